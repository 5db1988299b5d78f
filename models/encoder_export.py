"""Export a sentence-transformers bi-encoder to an int8 ONNX artifact directory (training side, torch).

The exported graph includes mean pooling and L2 normalisation, so the run time only tokenizes, runs
onnxruntime and reads ``sentence_embedding``: no torch, no pooling code to keep in sync.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .artifacts import file_sha256
from .onnx_export import export_onnx, quantize_int8
from .row_quantization import PER_ROW_NOTE

#: Phrases used to check that int8 stays close to fp32 (DESIGN §4: cosine >= 0.985 per-channel).
CHECK_PHRASES = [
    "type 2 diabetes mellitus", "essential hypertension", "heart attack", "myocardial infarction",
    "shortness of breath", "chronic obstructive pulmonary disease", "urinary tract infection",
    "difficulty walking up stairs", "metformin 500 mg twice daily", "no evidence of pneumonia",
    "Seizure", "Abnormality of the cardiovascular system", "Osteoarthritis of knee", "CHF", "MI",
]


class _PooledEncoder(torch.nn.Module):
    """BertModel + attention-masked mean pooling + L2 normalisation, with positional inputs for ONNX."""

    def __init__(self, bert: torch.nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def export_sentence_encoder(
    source: Path, out_dir: Path, model_id: str, max_length: int = 64, description: str = ""
) -> dict:
    """Export the sentence-transformers model at ``source`` to ``out_dir`` (int8 ONNX + tokenizer).

    Returns the written ``artifact.json`` content, including the measured fp32-vs-int8 cosine.
    """
    from sentence_transformers import SentenceTransformer

    from .encoder_runtime import OnnxSentenceEncoder

    torch.set_num_threads(2)
    st = SentenceTransformer(str(source), device="cpu")
    bert = st[0].auto_model
    wrapper = _PooledEncoder(bert).eval()
    tokenizer = st.tokenizer.backend_tokenizer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))

    example = st.tokenizer(["a b c", "heart attack"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(
            wrapper,
            (example["input_ids"], example["attention_mask"], example["token_type_ids"]),
            Path(tmp) / "model_fp32.onnx",
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
            | {"sentence_embedding": {0: "batch"}},
        )
        quantize_int8(fp32, out_dir / "model.onnx")
        meta = {
            "model_id": model_id,
            "kind": "sentence-encoder",
            "onnx_file": "model.onnx",
            "sha256": file_sha256(out_dir / "model.onnx"),
            "dimension": int(st.get_embedding_dimension()),
            "max_length": max_length,
            "quantization": f"onnxruntime dynamic int8, per-channel weights; {PER_ROW_NOTE}",
            "description": description,
            "exported_at": dt.date.today().isoformat(),
        }
        (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
        int8_vecs = OnnxSentenceEncoder(out_dir).encode(CHECK_PHRASES)
        with torch.no_grad():
            ref = st.encode(CHECK_PHRASES, convert_to_numpy=True, normalize_embeddings=True)
    cos = (int8_vecs * ref).sum(1)
    meta["int8_vs_torch_cosine"] = {"min": round(float(cos.min()), 4), "mean": round(float(np.mean(cos)), 4)}
    (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
