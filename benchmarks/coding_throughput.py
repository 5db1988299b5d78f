"""Documents/s of `clin-linker code`: the zero-shot coder and the shipped coder model, side by side in one run.

Both coders read the same pipeline output (NER, linking into ICD-10-CM, sections, ConText), so the pipeline pass is
timed once and each coder's own time is added to it: docs/s = documents / (pipeline seconds + coder seconds). The
pipeline memoises mention vectors, which is why it is not run twice (the second run would look faster for nothing
the coder did).

    python benchmarks/coding_throughput.py [--data ../shared/data/coding/codiesp_en/dev.jsonl] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from clin_linker.pipeline.build import linker_of
from clin_linker.pipeline.coder import build_coding_pipeline, load_coder

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "coding" / "codiesp_en" / "dev.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="coding JSONL (doc_id, text, ...)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    args = ap.parse_args()
    texts = [json.loads(line)["text"] for line in Path(args.data).read_text(encoding="utf-8").splitlines()
             if line.strip()][:args.limit]
    nlp = build_coding_pipeline("ICD10CM", "", args.threads)
    store = linker_of(nlp).resources.store
    coders = {"zero-shot": load_coder(store, zero_shot=True), "coder model": load_coder(store)}
    started = time.perf_counter()
    docs = list(nlp.pipe(texts))
    pipeline_s = time.perf_counter() - started
    print(f"{len(docs)} documents; pipeline {pipeline_s:.1f} s ({len(docs) / pipeline_s:.2f} docs/s)")
    rates = {}
    for name, coder in coders.items():
        started = time.perf_counter()
        codes = [coder(doc) for doc in docs]
        coder_s = time.perf_counter() - started
        rates[name] = len(docs) / (pipeline_s + coder_s)
        accepted = sum(c.accepted for doc_codes in codes for c in doc_codes)
        print(f"{name:<12} coder {coder_s:6.1f} s   {rates[name]:6.2f} docs/s   ({accepted} accepted codes)")
    print(f"ratio coder model / zero-shot: {rates['coder model'] / rates['zero-shot']:.2f}")


if __name__ == "__main__":
    main()
