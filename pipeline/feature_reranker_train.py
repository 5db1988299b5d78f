"""``clin-linker train feature-reranker``: learn the feature reranker from annotated documents (minutes on a CPU).

Training reads what run time reads: each linked entity of the training documents is retrieved by the shipped
candidate generator over the given dictionaries (``evaluation.linking.dictionary_linker``: the same encoder, hnsw
index, exact-name evidence and matched names), and its top ``k`` candidates get the run-time features
(``models.reranker.features.group_features``) with the mention in its document context. A candidate is positive
when it carries one of the entity's gold ids. Mentions whose gold concept is not retrieved in the top ``k`` teach no
order and are left out. Decisive ones (an exact vocabulary name first) stay in: run time reranks them too (an exact
name of the wrong concept is common), so the trees must learn when an exact hit is wrong.

Why negatives from the shipped retriever are not "agree with the retriever" here: measured on the plain protocol,
the shipped bi-encoder ranks gold first on 0.823 of the NCBI train mentions and 0.707 of the BC5CDR ones, no
better than on dev (0.846 / 0.714): it learned from names, not the mentions' concepts, so its train-set errors
are the errors it makes on new text.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..models.artifacts import ARTIFACTS_DIR, read_artifact
from ..models.encoder_runtime import OnnxSentenceEncoder
from ..models.reranker.feature_runtime import KIND
from ..models.reranker.features import FEATURE_NAMES, CandidateView, TextVectors, group_features
from .evaluation.linking import (
    dictionary_domains, dictionary_linker, load_dictionary, pair_context, read_linking_file, retrieve,
)

#: The general encoder the features read context and second-opinion cosines with (a shipped artifact).
CONTEXT_ENCODER = "encoder_minilm_int8"
#: The retriever whose candidates are reranked (the default index's encoder).
RETRIEVAL_ENCODER = "encoder_sapbert_int8"
#: Tree settings chosen on the shared dev sets (MODEL_CARD.md of the shipped reranker).
TREE_PARAMS = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 31, "l2_regularization": 1.0,
               "early_stopping": False, "random_state": 0}
#: Candidates per mention in training: run time reranks ``rerank_k`` (5) of them; 10 shows the trees more of
#: the near misses a wider head would meet.
TRAIN_K = 10


def corpus_rows(docs: str | Path, dictionaries: Sequence[str | Path], encoder: OnnxSentenceEncoder,
                vectors: TextVectors, k: int = TRAIN_K) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features and 0/1 labels of every candidate of the mentions of ``docs`` that can teach an order."""
    d = load_dictionary(list(dictionaries))
    domains = dictionary_domains(list(dictionaries))
    linker = dictionary_linker(d, encoder, domains=domains, source=", ".join(Path(x).name for x in dictionaries))
    pairs = read_linking_file(docs)
    if not pairs or "context" not in pairs[0]:
        raise ValueError(f"{docs}: the feature reranker learns from annotated documents (text + entities with "
                         "concept_ids, the shared ner/ format), which carry each mention's context")
    found, _ = retrieve(linker, sorted({p["mention"] for p in pairs}), k)
    xs, ys = [], []
    seen: set[tuple] = set()
    counts = {"mentions": len(pairs), "gold_in_top_k": 0, "decisive": 0, "used": 0}
    for p in tqdm(pairs, desc=f"features {Path(docs).parent.name}", unit="mention"):
        cands = found[p["mention"]][:k]
        gold = set(p["concept_ids"])
        hits = [bool(d.ids[d.concept_index(c.concept_key, create=False)] & gold) for c in cands]
        counts["gold_in_top_k"] += any(hits)
        counts["decisive"] += bool(cands and cands[0].exact)
        key = (p["mention"], p.get("label") or "", pair_context(p), tuple(sorted(gold)))
        if not any(hits) or key in seen:
            continue
        seen.add(key)
        views = [CandidateView(c.name or c.concept_key, c.score, c.exact, domains.get(c.concept_key, ""))
                 for c in cands]
        xs.append(group_features(pair_context(p), p.get("label") or "", views, vectors))
        ys += hits
        counts["used"] += 1
    return (np.vstack(xs) if xs else np.zeros((0, len(FEATURE_NAMES)), np.float32)), np.asarray(ys, dtype=int), \
        {"docs": f"{Path(docs).parent.name}/{Path(docs).name}", "dictionary": [Path(x).name for x in dictionaries],
         **counts}


def train(corpora: Sequence[tuple[str, Sequence[str]]], out_dir: Path, model_id: str, k: int = TRAIN_K,
          threads: int = 0) -> dict:
    """Fit the trees on every corpus's rows and export the artifact; returns its metadata."""
    from ..models.trees import export_trees, fit_trees

    started = time.perf_counter()
    encoder = OnnxSentenceEncoder(ARTIFACTS_DIR / RETRIEVAL_ENCODER, threads=threads or None)
    context = OnnxSentenceEncoder(ARTIFACTS_DIR / CONTEXT_ENCODER, threads=threads or None)
    vectors = TextVectors(context)
    parts = [corpus_rows(docs, dicts, encoder, vectors, k) for docs, dicts in corpora]
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if len(set(y.tolist())) < 2:
        raise ValueError("no mention had its gold concept among the retrieved candidates: check that the "
                         "dictionaries hold the documents' concept ids")
    features_s = time.perf_counter() - started
    model = fit_trees(x, y, TREE_PARAMS)
    summary = {"corpora": [p[2] for p in parts], "rows": int(len(y)), "positives": int(y.sum()), "train_k": k,
               "features_s": round(features_s, 1), "fit_s": round(time.perf_counter() - started - features_s, 1),
               "retrieval_encoder": encoder.info.short_id}
    return export_trees(model, out_dir, FEATURE_NAMES, {
        "model_id": model_id, "kind": KIND, "tree_params": TREE_PARAMS, "training": summary,
        "context_encoder": {"artifact": CONTEXT_ENCODER, "sha256": context.info.sha256,
                            "model_id": context.info.model_id}})


def _train_command(args: argparse.Namespace) -> int:
    try:
        import sklearn  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError as e:
        raise ValueError(f"training needs the training extra: pip install torch==2.13.0 'clin-linker[train]' ({e})")
    for docs, *dicts in args.corpus:
        if not dicts:
            raise ValueError(f"--corpus {docs}: name at least one dictionary (names TSV or concept store) after it")
    meta = train([(c[0], c[1:]) for c in args.corpus], Path(args.out), args.model_id, args.k, args.threads)
    print(json.dumps(meta, indent=2))
    print(f"next: clin-linker model calibrate-reranker --reranker {args.out} --corpus DEV_DOCS DICT ...")
    return 0


def register(train_commands: argparse._SubParsersAction) -> None:
    """``clin-linker train feature-reranker``."""
    ap = train_commands.add_parser(
        "feature-reranker",
        help="learn the context-reading feature reranker from annotated documents (minutes on a CPU)",
        description="Learn the reranker that orders the retrieved candidates: gradient-boosted trees over what a "
        "coder would weigh (retrieval cosine and rank, a second general encoder's cosine, the mention's context "
        "against the candidate, spelling overlap, short forms, the candidate's domain against the NER label). Each "
        "--corpus is annotated documents (the shared ner/ format: text + entities with concept_ids) and the "
        "dictionaries their ids live in; candidates come from the shipped retriever. Writes model.onnx and "
        "artifact.json into --out; fit its NIL threshold next with `clin-linker model calibrate-reranker`.",
    )
    ap.add_argument("--corpus", nargs="+", action="append", required=True, metavar="PATH",
                    help="DOCS.jsonl DICT [DICT ...] (repeat for several corpora)")
    ap.add_argument("--out", required=True, help="artifact directory to write")
    ap.add_argument("--model-id", default="clin-reranker-features", help="id recorded in artifact.json")
    ap.add_argument("--k", type=int, default=TRAIN_K, help=f"candidates per training mention (default {TRAIN_K})")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    ap.set_defaults(handler=_train_command)
