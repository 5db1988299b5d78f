"""NER throughput: the shipped int8 ONNX tagger vs the same trained weights in torch fp32.

Both go through the same ``WindowTagger`` code (tokenize, windows, batching, merge, decode) on
the same texts, with the same thread count, so the ratio isolates the network backend. Tokens are
the tokenizer's word pieces of the input texts (no special tokens, no window overlap).

    python benchmarks/ner_throughput.py --torch-model .devdata/ner_fp32 [--notes FILE.jsonl]

``--torch-model`` is a checkpoint written by ``clin_linker.models.ner.train`` (fp32 weights; not
committed). Notes are read from ``note_text`` (OMOP NOTE records) or ``text`` (NER JSONL) fields.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from clin_linker.models.ner.export import ARTIFACT_DIR
from clin_linker.models.ner.runtime import OnnxNerTagger, WindowTagger
from clin_linker.models.ner.windows import tokenize_texts

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NOTES = REPO / "beam_jobs" / "data" / "sample_notes.jsonl"


def read_texts(path: Path) -> list[str]:
    """Texts of a JSONL file of notes or NER documents."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            texts.append(record.get("note_text") or record.get("text") or "")
    return texts


def tokens_per_second(tagger: WindowTagger, texts: list[str], n_tokens: int, batch_size: int, min_s: float) -> float:
    """Repeat full passes over ``texts`` for at least ``min_s`` seconds after one warm-up pass."""
    tagger.predict(texts, batch_size=batch_size)
    passes, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_s or passes == 0:
        tagger.predict(texts, batch_size=batch_size)
        passes += 1
    return n_tokens * passes / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ARTIFACT_DIR, help="int8 ONNX artifact folder")
    p.add_argument("--torch-model", type=Path, required=True, help="fp32 training checkpoint folder")
    p.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--min-seconds", type=float, default=10.0, help="timed seconds per backend")
    a = p.parse_args()

    import torch

    from clin_linker.models.ner.train import TorchNerTagger

    torch.set_num_threads(a.threads)
    texts = read_texts(a.notes)
    onnx_tagger = OnnxNerTagger(a.model, threads=a.threads)
    torch_tagger = TorchNerTagger.from_checkpoint(a.torch_model, device="cpu")
    n_tokens = sum(len(t) for t in tokenize_texts(onnx_tagger.tokenizer, texts))
    print(f"{len(texts)} texts from {a.notes}, {n_tokens} tokens, {a.threads} threads, batch {a.batch_size}")

    rates = {
        "onnx int8": tokens_per_second(onnx_tagger, texts, n_tokens, a.batch_size, a.min_seconds),
        "torch fp32": tokens_per_second(torch_tagger, texts, n_tokens, a.batch_size, a.min_seconds),
    }
    spans = [
        {(doc, *span) for doc, doc_spans in enumerate(tagger.predict(texts, a.batch_size)) for span in doc_spans}
        for tagger in (onnx_tagger, torch_tagger)
    ]
    for name, rate in rates.items():
        print(f"{name:>11}: {rate:10.0f} tokens/s")
    print(f"ratio int8 ONNX / torch fp32: {rates['onnx int8'] / rates['torch fp32']:.2f}x")
    agreement = len(spans[0] & spans[1]) / max(1, len(spans[0] | spans[1]))
    print(f"span agreement (|int8 ∩ fp32| / |int8 ∪ fp32|): {agreement:.3f} over {len(spans[1])} fp32 spans")


if __name__ == "__main__":
    main()
