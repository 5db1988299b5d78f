"""Export a HF sequence-classification cross-encoder to an int8 ONNX artifact directory (training side, torch).

Same recipe as every network we ship (DESIGN §4, ``models/onnx_export``): ``torch.onnx.export(dynamo=False)`` of a
wrapper that passes keyword arguments to the model and returns the single logit, then dynamic int8 per-channel.
The artifact records how far int8 moved the scores from torch on clinical check groups (max |diff|, Pearson,
and whether each group's best candidate stayed the best), because reranking only needs the order right.
"""
from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ..artifacts import file_sha256
from ..onnx_export import export_onnx, quantize_int8
from .inputs import MentionContext, PairEncoder, TokenBudget, mention_context
from .runtime import KIND, OnnxCrossEncoder

#: Clinical check groups shaped like reranking inputs, (text, mention, candidates): the first candidate is right.
_CHECKS: list[tuple[str, str, list[str]]] = [
    ("He was admitted with a heart attack last year.", "heart attack",
     ["Myocardial Infarction", "Chest Pain", "Heart Arrest", "Angina Pectoris", "Heart Failure"]),
    ("History of type 2 diabetes on metformin.", "type 2 diabetes",
     ["Diabetes Mellitus, Type 2", "Diabetes Mellitus, Type 1", "Diabetes Insipidus", "Prediabetic State"]),
    ("PMH: HTN, HLD. BP 150/95 today.", "HTN", ["Hypertension", "Hypotension", "Pulmonary Hypertension"]),
    ("Mother had breast cancer at 45.", "breast cancer",
     ["Breast Neoplasms", "Breast Diseases", "Ovarian Neoplasms", "Carcinoma, Ductal, Breast"]),
    ("Acute renal failure after contrast.", "renal failure",
     ["Renal Insufficiency", "Kidney Diseases", "Liver Failure", "Acute Kidney Injury"]),
    ("Haloperidol-induced catalepsy in rats.", "Haloperidol",
     ["Haloperidol ; drug", "Droperidol ; drug", "Chlorpromazine ; drug", "Catalepsy ; condition"]),
    ("Dopamine (DA) release in the striatum was reduced.", "DA",
     ["Dopamine ; drug", "Diabetic Angiopathies ; condition", "Dextroamphetamine ; drug"]),
    ("nitric oxide (NO) synthase inhibition", "NO",
     ["Nitric Oxide ; drug", "Nitrous Oxide ; drug", "Nitrogen ; drug"]),
]


def check_groups() -> list[tuple[MentionContext, list[str]]]:
    """The check groups as (context, candidate texts)."""
    out = []
    for text, mention, names in _CHECKS:
        start = text.index(mention)
        out.append((mention_context(text, start, start + len(mention)), names))
    return out


class _Scorer(torch.nn.Module):
    """Sequence classifier with positional inputs returning the one logit per pair (ONNX output ``score``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.logits[:, 0]


def torch_scores(model, pairs: PairEncoder, groups: Sequence[tuple[MentionContext, Sequence[str]]]) -> np.ndarray:
    """Logits of every (context, candidate) of ``groups`` from the torch model, with the run-time pair encoder."""
    contexts = [ctx for ctx, names in groups for _ in names]
    names = [n for _, group in groups for n in group]
    if not names:
        return np.zeros(0, dtype=np.float32)
    inputs = {k: torch.from_numpy(v) for k, v in pairs.encode(contexts, names).items()}
    with torch.no_grad():
        return model(**inputs).logits[:, 0].float().numpy()


def agreement(ref: np.ndarray, got: np.ndarray, group_sizes: Sequence[int]) -> dict:
    """How closely ``got`` reproduces ``ref``: max/mean |diff|, Pearson, share of groups with the same best item."""
    same_top, start = 0, 0
    for size in group_sizes:
        same_top += int(np.argmax(ref[start : start + size]) == np.argmax(got[start : start + size]))
        start += size
    diff = np.abs(ref - got)
    return {"max_abs_diff": round(float(diff.max()), 4), "mean_abs_diff": round(float(diff.mean()), 4),
            "pearson": round(float(np.corrcoef(ref, got)[0, 1]), 4),
            "top1_agreement": round(same_top / max(len(group_sizes), 1), 4),
            "n_pairs": int(len(ref)), "n_groups": len(group_sizes)}


def export_cross_encoder(source: Path, out_dir: Path, model_id: str, description: str = "",
                         keep_fp32: Path | None = None, threads: int = 2) -> dict:
    """Export the HF model at ``source`` to ``out_dir`` (int8 ``model.onnx`` + ``tokenizer.json`` + ``artifact.json``).

    The token budget is the one in ``source/train_summary.json`` (what training read), else the default.
    ``keep_fp32``: also write the fp32 graph there (tests compare it with torch; not shipped).
    Returns the ``artifact.json`` content, with the measured int8-vs-torch (and fp32-vs-torch) agreement.
    """
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    source, out_dir = Path(source), Path(out_dir)
    summary_path = source / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    budget = TokenBudget(**summary.get("budget", {}))
    model = AutoModelForSequenceClassification.from_pretrained(str(source)).eval()
    if model.config.num_labels != 1:
        raise ValueError(f"{source}: a reranker has one output logit (num_labels=1), this model has "
                         f"{model.config.num_labels}")
    pairs = PairEncoder.from_file(str(source / "tokenizer.json"), budget)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs.tokenizer.save(str(out_dir / "tokenizer.json"))

    wrapper = _Scorer(model).eval()
    groups = check_groups()
    example = {k: torch.from_numpy(v) for k, v in pairs.encode([groups[0][0]] * 2, groups[0][1][:2]).items()}
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(keep_fp32) if keep_fp32 else Path(tmp) / "model_fp32.onnx"
        export_onnx(wrapper, tuple(example[n] for n in names), fp32, input_names=names, output_names=["score"],
                    dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {"score": {0: "batch"}})
        quantize_int8(fp32, out_dir / "model.onnx")
        meta = {
            "model_id": model_id,
            "kind": KIND,
            "onnx_file": "model.onnx",
            "sha256": file_sha256(out_dir / "model.onnx"),
            "budget": budget.to_json(),
            "layers": int(model.config.num_hidden_layers),
            "input": "[CLS] left context [unused0] mention [unused1] right context [SEP] candidate name ; domain [SEP]",
            "output": "score: one logit per pair, higher = more likely the mention's concept",
            "description": description,
            "training": {k: summary[k] for k in ("examples", "layers", "steps", "epochs", "lr", "seed", "group",
                                                 "pointwise_weight", "wall_s") if k in summary},
            "exported_at": dt.date.today().isoformat(),
        }
        (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
        sizes = [len(g) for _, g in groups]
        ref = torch_scores(model, pairs, groups)
        int8 = OnnxCrossEncoder(out_dir, threads=threads)
        meta["int8_vs_torch"] = agreement(ref, np.concatenate(int8.score_groups(groups)), sizes)
        runner = OnnxCrossEncoder(out_dir, threads=threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        runner.session = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
        fp32_scores = np.concatenate(runner.score_groups(groups, groups_per_call=len(groups)))
        meta["fp32_onnx_vs_torch_max_abs_diff"] = round(float(np.abs(fp32_scores - ref).max()), 6)
    (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
