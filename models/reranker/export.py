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
import torch

from ..artifacts import file_sha256
from ..onnx_export import export_onnx, quantize_int8
from .runtime import KIND, OnnxCrossEncoder

#: (mention, candidate names) groups shaped like reranking inputs: the first name is the right one.
CHECK_GROUPS: list[tuple[str, list[str]]] = [
    ("heart attack", ["Myocardial Infarction", "Chest Pain", "Heart Arrest", "Angina Pectoris", "Heart Failure"]),
    ("type 2 diabetes", ["Diabetes Mellitus, Type 2", "Diabetes Mellitus, Type 1", "Diabetes Insipidus",
                         "Prediabetic State", "Diabetic Nephropathies"]),
    ("HTN", ["Hypertension", "Hypotension", "Pulmonary Hypertension", "Intracranial Hypertension",
             "Portal Hypertension"]),
    ("breast cancer", ["Breast Neoplasms", "Breast Diseases", "Ovarian Neoplasms", "Carcinoma, Ductal, Breast",
                       "Fibrocystic Breast Disease"]),
    ("renal failure", ["Renal Insufficiency", "Kidney Diseases", "Liver Failure", "Renal Insufficiency, Chronic",
                       "Acute Kidney Injury"]),
    ("seizures", ["Seizures", "Epilepsy", "Seizures, Febrile", "Status Epilepticus", "Syncope"]),
    ("shortness of breath", ["Dyspnea", "Apnea", "Asthma", "Respiratory Insufficiency", "Cough"]),
    ("G6PD deficiency", ["Glucosephosphate Dehydrogenase Deficiency", "Anemia, Hemolytic", "Pyruvate Kinase Deficiency",
                         "Favism", "Glycogen Storage Disease"]),
    ("haloperidol", ["Haloperidol", "Droperidol", "Chlorpromazine", "Risperidone", "Fluphenazine"]),
    ("lithium carbonate", ["Lithium Carbonate", "Lithium", "Lithium Chloride", "Sodium Carbonate", "Carbamazepine"]),
    ("ataxia-telangiectasia", ["Ataxia Telangiectasia", "Telangiectasis", "Cerebellar Ataxia",
                               "Spinocerebellar Ataxias", "Friedreich Ataxia"]),
    ("hepatotoxicity", ["Chemical and Drug Induced Liver Injury", "Liver Diseases", "Hepatitis", "Liver Failure",
                        "Drug-Related Side Effects and Adverse Reactions"]),
]


class _Scorer(torch.nn.Module):
    """Sequence classifier with positional inputs returning the one logit per pair (ONNX output ``score``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.logits[:, 0]


def torch_scores(model, tokenizer, pairs: Sequence[tuple[str, str]], max_length: int) -> np.ndarray:
    """Logits of ``pairs`` from the torch model, tokenized as in training (``tokenizer(query, name)``)."""
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    enc = tokenizer([q for q, _ in pairs], [n for _, n in pairs], padding=True, truncation=True,
                    max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits[:, 0].float().numpy()


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


def export_cross_encoder(source: Path, out_dir: Path, model_id: str, max_length: int | None = None,
                         description: str = "", keep_fp32: Path | None = None, threads: int = 2) -> dict:
    """Export the HF model at ``source`` to ``out_dir`` (int8 ``model.onnx`` + ``tokenizer.json`` + ``artifact.json``).

    ``max_length`` defaults to the one in ``source/train_summary.json`` (what training truncated to), else 48.
    ``keep_fp32``: also write the fp32 graph there (tests compare it with torch; not shipped).
    Returns the ``artifact.json`` content, with the measured int8-vs-torch (and fp32-vs-torch) agreement.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    source, out_dir = Path(source), Path(out_dir)
    summary_path = source / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if max_length is None:
        max_length = int(summary.get("max_length", 48))
    model = AutoModelForSequenceClassification.from_pretrained(str(source)).eval()
    if model.config.num_labels != 1:
        raise ValueError(f"{source}: a reranker has one output logit (num_labels=1), this model has "
                         f"{model.config.num_labels}")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(out_dir / "tokenizer.json"))

    wrapper = _Scorer(model).eval()
    example = tokenizer(["heart attack", "a b c"], ["Myocardial Infarction", "x"], padding=True, return_tensors="pt")
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
            "max_length": max_length,
            "layers": int(model.config.num_hidden_layers),
            "input": "tokenizer(query, candidate name): [CLS] mention [SEP] matched concept name [SEP]",
            "output": "score: one logit per pair, higher = more likely the mention's concept",
            "description": description,
            "training": {k: summary[k] for k in ("examples", "layers", "steps", "epochs", "lr", "seed", "group")
                         if k in summary},
            "exported_at": dt.date.today().isoformat(),
        }
        (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
        pairs = [(q, n) for q, group in CHECK_GROUPS for n in group]
        sizes = [len(group) for _, group in CHECK_GROUPS]
        ref = torch_scores(model, tokenizer, pairs, max_length)
        int8 = OnnxCrossEncoder(out_dir, threads=threads)
        meta["int8_vs_torch"] = agreement(ref, np.concatenate(int8.score_groups([[(q, n) for n in g]
                                                                                for q, g in CHECK_GROUPS])), sizes)
        fp32_scores = _onnx_scores(fp32, out_dir, pairs, threads)
        meta["fp32_onnx_vs_torch_max_abs_diff"] = round(float(np.abs(fp32_scores - ref).max()), 6)
    (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _onnx_scores(onnx_path: Path, artifact_dir: Path, pairs: Sequence[tuple[str, str]], threads: int) -> np.ndarray:
    """Scores of an ONNX file other than the artifact's own (the fp32 graph), with the artifact's tokenizer."""
    import onnxruntime as ort

    runner = OnnxCrossEncoder(artifact_dir, threads=threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    runner.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return runner.score(pairs, batch_size=len(pairs))
