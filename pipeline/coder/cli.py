"""``clin-linker train coder``: the argparse side of :mod:`.train`."""
from __future__ import annotations

import argparse


def _train_coder(args: argparse.Namespace) -> int:
    try:
        from .train import main
    except ImportError as e:
        raise ValueError(f"training needs the training extra: pip install torch==2.13.0 'clin-linker[train]' ({e})")
    return main(args)


def register(train_commands: argparse._SubParsersAction) -> None:
    ap = train_commands.add_parser(
        "coder",
        help="learn a site's document coder from coded notes (minutes on a CPU)",
        description="Learn the document coder from notes with their document-level codes: one JSON object per "
        'line {"doc_id", "text", "<vocabulary in lower case>": [codes]} (the format of the shared CodiEsp files). '
        "The shipped pipeline reads every note once; the coder learns the site's mention -> code habits (a lexicon "
        "counted on --docs) and a tree model over each candidate code's features (retrieval scores, lexicon, code "
        "prior, NER label, assertion flags, repetition, position). The accept threshold is the best micro-F1 on "
        "--dev. Writes model.onnx, artifact.json and lexicon.json.gz into --out; use it with "
        "`clin-linker code --coder OUT` or `clin-linker eval coding --coder OUT`.",
    )
    ap.add_argument("--docs", required=True, help="coded training notes (JSONL)")
    ap.add_argument("--dev", required=True, help="coded dev notes (JSONL): the threshold is chosen on them")
    ap.add_argument("--out", required=True, help="artifact directory to write")
    ap.add_argument("--vocabulary", default="ICD10CM", help="vocabulary of the codes (default ICD10CM)")
    ap.add_argument("--min-notes", type=int, default=2,
                    help="keep a lexicon pair (mention -> code) only when seen in at least this many notes (default 2)")
    ap.add_argument("--model-id", default="clin-coder", help="id recorded in artifact.json")
    ap.add_argument("--index", default=None, help="index directory (default: the embedded default index)")
    rr = ap.add_mutually_exclusive_group()
    rr.add_argument("--rerank", metavar="RERANKER_DIR", nargs="?", const="", default=None,
                    help="train on reranked candidates (with no value: the shipped reranker); coding commands then "
                         "rerank too (the artifact records it)")
    rr.add_argument("--no-rerank", action="store_true", help="train on retrieval alone (the default)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    ap.set_defaults(handler=_train_coder)
