"""Linking throughput: retrieval alone vs retrieval + cross-encoder reranking, side by side in one run.

The embedded sample notes go through sentences, abbreviations and the NER model once (not timed); then each
linker setting links those same mentions (``ClinLinker.pipe`` on the tagged docs: queries, bi-encoder, hnswlib,
exact lookup, reranking, NIL) for at least ``--min-seconds``. Every timed pass starts cold, as a fresh
``clin-linker run`` would: the bi-encoder memo, the reranker's text-vector memo and the rerank cache are emptied
first, so repeated mentions are
free only within a pass. Settings differ only in the linker config; all share one process, index and thread count.

    python benchmarks/rerank_throughput.py [--reranker DIR] [--rerank-k 3 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NOTES = REPO / "beam_jobs" / "data" / "sample_notes.jsonl"


def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["note_text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tagged_docs(texts: list[str], threads: int) -> list:
    """The notes up to (not including) the linker: sentences, abbreviations, NER mentions."""
    import spacy

    from clin_linker.pipeline import build  # noqa: F401  (registers the factories)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_abbreviations")
    nlp.add_pipe("clin_ner", config={"threads": threads})
    return list(nlp.pipe(texts, batch_size=16))


def mentions_per_second(linker, docs: list, min_s: float) -> tuple[float, int]:
    """Cold passes (caches emptied) over ``docs`` for at least ``min_s`` seconds, after one warm-up pass."""
    n = sum(len(d.ents) for d in docs)

    def one_pass() -> None:
        linker.resources.candidates._memo.clear()
        if linker.reranker is not None:
            linker.reranker.clear_caches()
        for _ in linker.pipe(iter(docs), batch_size=64):
            pass

    one_pass()
    passes, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_s or passes == 0:
        one_pass()
        passes += 1
    return n * passes / elapsed, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    p.add_argument("--index", default="", help="index directory (default: the embedded ICD-10-CM + HPO index)")
    p.add_argument("--reranker", default="", help="reranker artifact (default: the shipped one)")
    p.add_argument("--rerank-k", type=int, nargs="+", default=[5])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=10.0, help="timed seconds per setting")
    p.add_argument("--variants", action="store_true",
                   help="also time: the exact-name shortcut (decisive mentions not reranked), and 16 mentions per "
                        "onnxruntime call")
    a = p.parse_args()

    import spacy

    from clin_linker.pipeline import build  # noqa: F401

    texts = read_texts(a.notes)
    docs = tagged_docs(texts, a.threads)
    settings = [("retrieval only", {"rerank": False})]
    for k in a.rerank_k:
        rerank = {"rerank": True, "reranker_dir": a.reranker, "rerank_k": k}
        settings.append((f"retrieval + rerank k={k}", rerank))
        if a.variants:
            settings.append((f"  rerank k={k}, exact shortcut", {**rerank, "rerank_skip_exact": True}))
            settings.append((f"  rerank k={k}, 16 mentions/call", {**rerank, "rerank_mentions_per_call": 16}))
    print(f"{len(texts)} notes from {a.notes.name}, {sum(len(d.ents) for d in docs)} NER mentions, "
          f"{a.threads} threads, each pass cold (memos + rerank cache emptied)")
    base = None
    for name, config in settings:
        nlp = spacy.blank("en")
        linker = nlp.add_pipe("clin_linker", config={"index_dir": a.index, "detector": "none", "threads": a.threads,
                                                      **config})
        linker.initialize()  # no reranker installed: fails here, naming --reranker's config key
        rate, n = mentions_per_second(linker, docs, a.min_seconds)
        linked = [(e._.concept, e._.score) for d in linker.pipe(iter(docs)) for e in d.ents]
        nil = sum(c is None for c, _ in linked)
        extra = ""
        if linker.reranker is not None:
            reranked = len(linker.reranker._cache)
            extra = f"  ({reranked} distinct mentions reranked per pass, NIL threshold {linker.reranker.threshold:.3f})"
        base = base or rate
        print(f"{name:<36} {rate:8.0f} mentions/s  {1000 / rate:6.2f} ms/mention  x{rate / base:4.2f}  "
              f"NIL {nil}/{n}{extra}")


if __name__ == "__main__":
    main()
