"""``clin-linker eval ner|context|linking|coding`` and ``clin-linker model calibrate-reranker``: argparse, printing.

Every command scores the shipped models when no path is given (the shipped NER model, the default index with its
encoder; ``--rerank`` without a directory: the shipped reranker) and says which artifacts it used (id@sha
prefix): on stderr, and under "artifacts" in ``--json`` output.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DETECTORS = ("ner", "dictionary", "ner+dictionary")


def _print_artifacts(artifacts: dict) -> None:
    print("artifacts: " + "; ".join(f"{k} {v}" for k, v in artifacts.items()), file=sys.stderr)


def _pipeline_artifacts(nlp) -> dict:
    """model_id of every pipeline component that has one (NER model, linker's encoder and store)."""
    return {name: pipe.model_id for name, pipe in nlp.pipeline if hasattr(pipe, "model_id")}


class PipelineDetector:
    """The spaCy pipeline's mentions (``doc.ents``) as a tagger, so every detector is scored the same way."""

    def __init__(self, detector: str, model_dir: str, index_dir: str, threads: int):
        from ..build import build_pipeline

        self.nlp = build_pipeline(
            index_dir,
            ner=detector != "dictionary",
            ner_config={"model_dir": model_dir, "threads": threads},
            detector="none" if detector == "ner" else "dictionary",
            threads=threads,
        )

    @property
    def artifacts(self) -> dict:
        """model_id of every component that has one (NER model, linker's encoder and store)."""
        return _pipeline_artifacts(self.nlp)

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> list[list[tuple[int, int, str]]]:
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                for doc in self.nlp.pipe(texts, batch_size=batch_size)]


def _eval_ner(args: argparse.Namespace) -> int:
    from ...models.ner.labels import LABELS
    from ..ner_component import load_tagger
    from .metrics import evaluate_file, format_table

    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"annotated file {data} does not exist")
    if args.detector == "ner":
        tagger = load_tagger(args.model or None, args.threads)
        artifacts = {"ner": tagger.info.short_id}
        tagger_batch = 32  # docs read at once; the tagger still runs one window per call, as the component does
    else:
        tagger = PipelineDetector(args.detector, args.model or "", args.index or "", args.threads)
        artifacts = tagger.artifacts
        tagger_batch = 32
    _print_artifacts(artifacts)
    report = evaluate_file(data, tagger, labels=LABELS if args.all_labels else None, batch_size=tagger_batch)
    if args.json:
        print(json.dumps({**report, "artifacts": artifacts}, indent=2))
    else:
        print(f"{args.detector} on {data} ({report['n_docs']} docs; scored labels: "
              f"{', '.join(report['scored_labels'])})")
        print(format_table({data.parent.name or data.name: report}))
    return 0


def _eval_context(args: argparse.Namespace) -> int:
    from .metrics import score_context

    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"annotated file {data} does not exist")
    examples = []
    for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        example = json.loads(line)
        missing = [k for k in ("text", "start", "end") if k not in example]
        if missing:
            raise ValueError(f"{data}, line {number}: field(s) {', '.join(missing)} missing; each line needs "
                             "text, start, end and the flags to score")
        examples.append(example)
    print("artifacts: none (sections + ConText rules only)", file=sys.stderr)
    scores = score_context(examples)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        print(f"{'flag':<13} {'accuracy':>8} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
        for flag, s in scores.items():
            print(f"{flag:<13} {s['accuracy']:>8.3f} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} {s['n']:>5}")
    return 0


def _linker(args: argparse.Namespace):
    """The linker ``eval linking`` scores: a built index as the component loads it (``--index``, default the
    embedded one), or an in-memory index over ``--dictionary``."""
    from ...models.encoder_runtime import OnnxSentenceEncoder
    from ...ontologies.default_index import DEFAULT_ENCODER_DIR
    from .linking import add_train_mentions, dictionary_domains, dictionary_linker, index_linker, load_dictionary

    threads = args.threads or None
    exact = args.search == "exact"
    if args.dictionary and args.index:
        raise ValueError("--dictionary and --index name two different indexes: pass one of them")
    if args.dictionary:
        encoder = OnnxSentenceEncoder(Path(args.encoder) if args.encoder else DEFAULT_ENCODER_DIR, threads=threads)
        d = load_dictionary(args.dictionary)
        if args.add_train_mentions:
            d = add_train_mentions(d, args.add_train_mentions)
        return dictionary_linker(d, encoder, exact=exact, threads=threads,
                                 source=", ".join(Path(x).name for x in args.dictionary)
                                 + (" + train mentions" if args.add_train_mentions else ""),
                                 domains=dictionary_domains(args.dictionary))
    linker = index_linker(args.index, threads)
    if args.encoder:
        from ...models.artifacts import read_artifact

        wanted = read_artifact(Path(args.encoder))
        if wanted.sha256 != linker.encoder.info.sha256:
            raise ValueError(f"--encoder {args.encoder} ({wanted.short_id}) is not the encoder of the index "
                             f"({linker.encoder.info.short_id}): the index's encoder embeds its queries; pass --dictionary to score "
                             "another encoder")
    if exact or args.add_train_mentions:
        d = add_train_mentions(linker.dictionary, args.add_train_mentions) if args.add_train_mentions \
            else linker.dictionary
        return dictionary_linker(d, linker.encoder, exact=exact, params=linker.params, threads=threads,
                                 source="default store" + (" + train mentions" if args.add_train_mentions else ""),
                                 domains=linker.domains)
    return linker


def _protocol_line(args: argparse.Namespace) -> str:
    return ("composite gold ids: a hit on any id counts; concept alt_ids count as the concept"
            + ("; train mentions ADDED to the dictionary" if args.add_train_mentions else "")
            + ("; short forms expanded from same-document mentions" if args.expand_abbreviations else "")
            + (f"; doc fold {args.doc_fold}" if args.doc_fold != "all" else ""))


def _unseen_rows(r: dict, name: str) -> list[str]:
    from .metrics import format_rank_row

    return [format_rank_row(f"{name}: unseen concepts", r["unseen"])] if "unseen" in r else []


def _eval_linking(args: argparse.Namespace) -> int:
    from ..reranking import chosen_reranker_dir
    from .linking import evaluate_linking
    from .metrics import format_rank_row

    reranker_dir = chosen_reranker_dir(args.rerank, args.no_rerank)
    linker = _linker(args)
    artifacts = dict(linker.artifacts)
    fold = None if args.doc_fold == "all" else args.doc_fold
    if reranker_dir is None:
        _print_artifacts(artifacts)
        r = evaluate_linking(args.pairs, linker, k=args.k, expand_abbreviations=args.expand_abbreviations, fold=fold,
                             predictions=args.predictions, train_pairs=args.train_pairs)
        if args.json:
            print(json.dumps({**r, "artifacts": artifacts}))
            return 0
        print(_protocol_line(args))
        print(f"{'':<34} acc@1 acc@5 acc@25 mrr    n      ceiling")
        print(format_rank_row("all", r))
        for label, s in r["labels"].items():
            print(format_rank_row(label, s))
        print("\n".join(_unseen_rows(r, "all")))
        return 0
    from ...models.artifacts import read_artifact
    from .reranked import evaluate_reranking

    artifacts["reranker"] = read_artifact(reranker_dir).short_id
    _print_artifacts(artifacts)
    r = evaluate_reranking(args.pairs, linker, reranker_dir, k=args.k, rerank_k=args.rerank_k,
                           skip_exact=args.skip_exact, expand_abbreviations=args.expand_abbreviations,
                           nil_threshold=args.nil_threshold, fold=fold, threads=args.threads,
                           holdout=args.nil_holdout, seed=args.nil_seed, predictions=args.predictions,
                           train_pairs=args.train_pairs)
    if args.json:
        print(json.dumps({**r, "artifacts": artifacts}))
        return 0
    rr = r["rerank"]
    print(_protocol_line(args))
    print(f"reranker {rr['model']}, top {rr['rerank_k']} reranked"
          + (f", {rr['decisive_mentions']}/{rr['mentions']} decisive mentions kept as retrieved" if rr["skip_exact"]
             else "") + ("" if rr["calibrated"] else "; UNCALIBRATED (no calibration.json)"))
    print(f"{'':<34} acc@1 acc@5 acc@25 mrr    n      ceiling")
    for name, res in (("retrieval only", r["retrieval_only"]), ("retrieval + rerank", r)):
        print(format_rank_row(f"{name}: all", res))
        for label, s in res["labels"].items():
            print(format_rank_row(f"{name}: {label}", s))
        for row in _unseen_rows(res, name):
            print(row)
    n = r.get("nil")
    if n:
        print(f"NIL (unseen-concept simulation: {n['holdout']:.0%} of gold concepts removed, seed {n['seed']}): "
              f"threshold {n['threshold']:.3f}, precision {n['precision']:.3f}, recall {n['recall']:.3f} "
              f"({n['abstained']} abstained, {n['nil_mentions']} of {n['n']} mentions truly NIL); as abstention "
              f"(truly NIL or wrongly linked, {n['wrong_mentions']} mentions): precision "
              f"{n['abstention_precision']:.3f}, recall {n['abstention_recall']:.3f}")
    return 0


def _eval_coding(args: argparse.Namespace) -> int:
    from ..build import linker_of
    from ..coder import build_coding_pipeline, coding_reranker_dir, excluded_flags, load_coder
    from .coding import evaluate_coding, read_coded_documents

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    docs = read_coded_documents(args.data, args.vocabulary, args.limit)
    nlp = build_coding_pipeline(args.vocabulary, args.index or "", args.threads,
                                coding_reranker_dir(args.rerank, args.no_rerank, args.coder, args.zero_shot,
                                                    vocabulary=args.vocabulary))
    excluded = excluded_flags(args.include_negated)
    coder = load_coder(linker_of(nlp).resources.store, args.vocabulary, args.coder, args.zero_shot, excluded)
    artifacts = {**_pipeline_artifacts(nlp), "coder": coder.model_id}
    _print_artifacts(artifacts)
    r = evaluate_coding(docs, nlp, coder, args.vocabulary)
    if args.json:
        print(json.dumps({**r, "artifacts": artifacts}))
        return 0
    print(f"{args.vocabulary} document coding on {args.data} ({r['n_docs']} docs, {r['docs_per_s']:.2f} docs/s) by "
          f"{coder.model_id}; mentions with {', '.join(excluded) or 'any flag'} make no code")
    print(f"{'':<10} {'map':>6} {'prec':>6} {'recall':>6} {'f1':>6}")
    for name, s in (("code", {"map": r["map"], **r["micro"]}), ("category3", r["cat3"])):
        print(f"{name:<10} {s['map']:>6.3f} {s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f}")
    return 0


def add_coder_options(ap: argparse.ArgumentParser) -> None:
    """The options every command that codes notes takes (``eval coding``, ``code``)."""
    ap.add_argument("--vocabulary", default="ICD10CM",
                    help="vocabulary to code into, as the store spells it (default ICD10CM; the default store also "
                         "holds ICD10PCS, SNOMED and HPO)")
    ap.add_argument("--coder", default=None, metavar="DIR",
                    help="coder model from `clin-linker train coder` (default: the shipped one of --vocabulary; "
                         "ICD10CM and ICD10PCS have one)")
    ap.add_argument("--zero-shot", action="store_true",
                    help="no coder model: rank codes by their mentions' retrieval scores alone")
    ap.add_argument("--include-negated", action="store_true",
                    help="negated mentions make codes too (family and hypothetical ones still do not)")
    ap.add_argument("--index", default=None, help="index directory (default: the embedded default index)")
    rr = ap.add_mutually_exclusive_group()
    rr.add_argument("--rerank", metavar="RERANKER_DIR", nargs="?", const="", default=None,
                    help="rerank every candidate the coder reads with this reranker (with no value: the shipped one); "
                         "default: as the coder model was trained (the shipped coder: retrieval alone)")
    rr.add_argument("--no-rerank", action="store_true", help="code from retrieval alone")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")


def _register_coding(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser(
        "coding",
        help="MAP and micro P/R/F1 of the per-note code lists `clin-linker code` writes",
        description="Code whole notes as `clin-linker code` does (the shipped pipeline with the vocabulary as its "
        "target, then the coder: the shipped model, --coder DIR, or --zero-shot) and score each note's ranked list. "
        "Input: JSONL, one document per line "
        '{"doc_id", "text", "<vocabulary in lower case>": [gold codes]} (e.g. "icd10cm"). Scores: MAP (CodiEsp-D: '
        "average precision over the whole ranked list divided by the number of gold codes; predictions outside the "
        "vocabulary dropped first; documents without gold codes left out of MAP, their predictions still count), "
        "micro precision/recall/F1 of the accepted codes, the same at 3-character category level, and documents/s. "
        "Codes are compared after upper-casing and stripping, the dot kept as in the store's keys (R31.9). A gold "
        "code the vocabulary does not bill (a category such as R51, billable in the FY2018 edition CodiEsp was "
        "coded with; an ICD-10-PCS code of fewer than 7 characters, such as CodiEsp-P's BW20) is matched by itself "
        "or by the best-ranked predicted code under it (R51.9, BW20ZZZ), once.",
    )
    ap.add_argument("--data", required=True, help="coding JSONL file (e.g. ../shared/data/coding/codiesp_en/dev.jsonl)")
    add_coder_options(ap)
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N documents")
    ap.add_argument("--json", action="store_true",
                    help='print one JSON object {"map", "micro": {...}, "cat3": {...}, "n_docs", "docs_per_s", '
                         '"artifacts"}')
    ap.set_defaults(handler=_eval_coding)


def _calibrate_reranker(args: argparse.Namespace) -> int:
    from ...models.encoder_runtime import OnnxSentenceEncoder
    from ...ontologies.default_index import DEFAULT_ENCODER_DIR
    from ..reranking import MentionReranker, resolve_reranker_dir
    from .nil import fit_on_simulation

    corpora = []
    for spec in args.corpus:
        if len(spec) < 2:
            raise ValueError(f"--corpus takes PAIRS.jsonl then one or more dictionaries, got {spec}")
        for path in spec:
            if not Path(path).exists():
                raise FileNotFoundError(f"--corpus: {path} does not exist")
        corpora.append((spec[0], spec[1:]))
    reranker_dir = resolve_reranker_dir(args.reranker or "")
    encoder = OnnxSentenceEncoder(Path(args.encoder) if args.encoder else DEFAULT_ENCODER_DIR,
                                  threads=args.threads)
    reranker = MentionReranker(reranker_dir, args.threads or 0, args.rerank_k)
    _print_artifacts({"encoder": encoder.info.short_id, "reranker": reranker.model_id})
    calibrator = fit_on_simulation(corpora, encoder, reranker, args.target_precision, holdout=args.holdout,
                                   seed=args.seed, fold=None if args.doc_fold == "all" else args.doc_fold,
                                   expand_abbreviations=not args.no_expand_abbreviations,
                                   target=args.threshold_target, exact=args.search == "exact")
    calibrator.meta["encoder"] = encoder.info.short_id
    path = calibrator.save(Path(args.out) if args.out else reranker_dir)
    print(json.dumps(calibrator.to_json(), indent=2))
    print(f"wrote {path}")
    return 0


def _add_search_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", choices=("hnsw", "exact"), default="hnsw",
                        help="index over the dictionary: hnsw with the shipped settings (default; what `index build` "
                             "writes) or exact nearest-neighbour search (the retrieval hnsw approximates)")


def _register_linking(sub: argparse._SubParsersAction) -> None:
    from .nil import DEFAULT_HOLDOUT, DEFAULT_SEED

    ap = sub.add_parser(
        "linking",
        help="acc@1/5/25 + MRR of the shipped linker on mention->concept pairs",
        description="Score the shipped linker (candidate generator with exact-name evidence, one mention per "
        "encoder call; with --rerank the reranker) on a pairs JSONL "
        '({"mention", "concept_ids": [...], "label"?, "doc_id"?}). Without --dictionary it scores a built index '
        "(--index, default the embedded one) exactly as the clin_linker component uses it.",
    )
    ap.add_argument("--pairs", required=True,
                    help="linking pairs JSONL, or annotated documents JSONL (text + entities with concept_ids, the "
                         "shared ner/ format): then the reranker reads each mention in its context")
    ap.add_argument("--train-pairs", nargs="+", default=None, metavar="TRAIN.jsonl",
                    help="also score the 'unseen' subset: the mentions none of whose gold ids occurs in these train "
                         "pairs (or annotated documents)")
    ap.add_argument("--dictionary", nargs="+", default=None, metavar="PATH",
                    help="concept store dir(s) and/or names TSV(s) to index in memory (default: --index)")
    ap.add_argument("--index", default=None, metavar="DIR",
                    help="a built index (`clin-linker index build`), scored as the component loads it "
                         "(default: the embedded ICD-10-CM + HPO index)")
    ap.add_argument("--encoder", default=None,
                    help="ONNX encoder artifact dir (default: the default index's encoder)")
    _add_search_argument(ap)
    ap.add_argument("--add-train-mentions", nargs="*", default=None, metavar="TRAIN.jsonl",
                    help="add these pairs' mentions to the dictionary as names (BioSyn protocol; report separately)")
    ap.add_argument("--expand-abbreviations", action="store_true",
                    help="query a short form by the long form another mention of the same doc_id spells out "
                         "(stand-in for Ab3P on the text; report separately)")
    ap.add_argument("--doc-fold", choices=("A", "B", "all"), default="all",
                    help="score only documents of this fold (calibration is fitted on A; B is held out)")
    ap.add_argument("--k", type=int, default=25, help="candidates asked per mention, and the deepest rank scored")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    ap.add_argument("--json", action="store_true", help="print one JSON object (with an \"artifacts\" key)")
    ap.add_argument("--predictions", metavar="FILE.jsonl",
                    help="write each distinct mention's candidates, best first, one JSON line each")
    g = ap.add_argument_group("reranking (cross-encoder) and NIL")
    g.add_argument("--no-rerank", action="store_true", help="retrieval only (default: rerank with the shipped "
                   "reranker when one is installed)")
    g.add_argument("--rerank", metavar="RERANKER_DIR", nargs="?", const="", default=None,
                   help="rerank as the component does with rerank on: with this cross-encoder artifact, or without "
                        "a value the shipped one; reports acc@k before and after, and NIL in the unseen-concept "
                        "simulation (default: retrieval only, the component's default)")
    g.add_argument("--rerank-k", type=int, default=5, help="candidates reranked per mention (default 5)")
    g.add_argument("--skip-exact", action="store_true",
                   help="keep decisive mentions (a dictionary name spelled like the mention) as retrieved, without "
                        "reranking them (the component's rerank_skip_exact; default: rerank them too)")
    g.add_argument("--nil-threshold", type=float, default=None,
                   help="NIL below this calibrated probability (default: the reranker's calibration.json)")
    g.add_argument("--nil-holdout", type=float, default=DEFAULT_HOLDOUT,
                   help=f"share of gold concepts removed in the NIL simulation (default {DEFAULT_HOLDOUT})")
    g.add_argument("--nil-seed", type=int, default=DEFAULT_SEED)
    ap.set_defaults(handler=_eval_linking)


def _register_calibrate(model_commands: argparse._SubParsersAction) -> None:
    cal = model_commands.add_parser(
        "calibrate-reranker",
        help="fit the reranker's NIL probability and threshold on dev pairs (unseen-concept simulation)",
        description="Remove a seeded share of gold concepts from each corpus's dictionary, run the shipped "
        "retrieval and reranker over its dev pairs, and fit P(candidate is right) by logistic regression with "
        "non-negative weights on (cross-encoder logit, logit margin, bi-encoder cosine); choose the NIL threshold "
        "reaching --target-precision with the most recall (see --threshold-target). Writes calibration.json into "
        "the reranker directory (or --out). Only documents of --doc-fold are used, so the other fold stays held "
        "out for `clin-linker eval linking --rerank ... --doc-fold B`.",
    )
    cal.add_argument("--reranker", default=None,
                     help="cross-encoder artifact directory (default: the shipped one)")
    cal.add_argument("--encoder", default=None,
                     help="bi-encoder artifact directory for retrieval (default: the default index's encoder)")
    cal.add_argument("--corpus", nargs="+", action="append", required=True, metavar="PATH",
                     help="PAIRS.jsonl followed by its dictionary file(s) / concept store(s); repeatable")
    _add_search_argument(cal)
    cal.add_argument("--rerank-k", type=int, default=5, help="candidates reranked per mention (default 5)")
    cal.add_argument("--target-precision", type=float, default=0.9,
                     help="abstention precision the threshold must reach on the calibration data (default 0.9)")
    cal.add_argument("--threshold-target", choices=("abstention", "nil"), default="abstention",
                     help="what a right abstention is when choosing the threshold: a mention linking would get wrong "
                          "(truly NIL or wrong concept; default) or a truly-NIL mention only")
    cal.add_argument("--holdout", type=float, default=0.2, help="share of gold concepts removed (default 0.2)")
    cal.add_argument("--seed", type=int, default=13)
    cal.add_argument("--doc-fold", choices=("A", "B", "all"), default="A",
                     help="documents used (default A: fold B stays held out)")
    cal.add_argument("--no-expand-abbreviations", action="store_true",
                     help="do not expand short forms from same-document mentions (default: expand, as training)")
    cal.add_argument("--threads", type=int, default=None)
    cal.add_argument("--out", help="where to write calibration.json (default: into the reranker directory)")
    cal.set_defaults(handler=_calibrate_reranker)


def register(commands: argparse._SubParsersAction, model_commands: argparse._SubParsersAction) -> None:
    """``eval ...`` under the top CLI's commands; ``calibrate-reranker`` under ``model`` (``model_commands``)."""
    evaluate = commands.add_parser("eval", help="score detectors and linkers on annotated files")
    sub = evaluate.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    ner = sub.add_parser(
        "ner",
        help="strict span P/R/F1 per label and micro of a mention detector",
        description="Strict span precision/recall/F1 (exact start, end and label) per label and micro-averaged, "
        "on a JSONL file with one document per line: {\"text\": ..., \"entities\": [{\"start\", \"end\", "
        "\"label\"}]}. By default only the labels the file annotates are scored (a disease-only corpus cannot "
        "judge predicted drugs); --all-labels scores all six.",
    )
    ner.add_argument("--data", required=True, help="annotated JSONL file")
    ner.add_argument("--model", help="NER artifact directory (default: the shipped int8 model)")
    ner.add_argument("--detector", choices=DETECTORS, default="ner",
                     help="what to score: the NER model (default), the dictionary detector, or their union "
                          "as the shipped pipeline runs it")
    ner.add_argument("--index", help="index directory for the dictionary detector (default: the embedded one)")
    ner.add_argument("--all-labels", action="store_true", help="score all six labels, annotated or not")
    ner.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    ner.add_argument("--json", action="store_true",
                     help='print one JSON object {"micro": {...}, "labels": {...}, "n_docs": N, "artifacts": {...}}')
    ner.set_defaults(handler=_eval_ner)
    context = sub.add_parser(
        "context",
        help="accuracy and F1 per assertion flag (negated, uncertain, historical, hypothetical, family)",
        description="Score the pipeline's sections + ConText on annotated spans: one JSON object per line, "
        '{"text", "start", "end", "negated", "uncertain", "historical", "hypothetical", "family"}; the span is '
        "the target, and flags absent from a line are not scored.",
    )
    context.add_argument("--data", required=True, help="annotated JSONL file")
    context.add_argument("--json", action="store_true",
                         help='print one JSON object {FLAG: {"accuracy", "precision", "recall", "f1", "n"}}')
    context.set_defaults(handler=_eval_context)
    _register_linking(sub)
    _register_coding(sub)
    _register_calibrate(model_commands)


def main(argv: Sequence[str] | None = None) -> int:
    """``clin-linker eval ...`` alone (tests, scripts running several evaluations in one process)."""
    parser = argparse.ArgumentParser(prog="clin-linker")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands, commands.add_parser("model").add_subparsers(dest="model_command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)
