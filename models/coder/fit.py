"""Training the coder's scorer (needs the [train] extra: scikit-learn and skl2onnx) and writing its artifact.

A histogram gradient-boosted tree model: the features mix scales (cosines, counts, log priors) and interact (a
negated mention's code is worth something only when the site codes it anyway), which trees take as they are, and
500 coded notes are enough for a few hundred shallow trees. It is exported to ONNX (``TreeEnsembleClassifier``) so
that run time needs onnxruntime only. Fixed seed, no early stopping: the same data gives the same model.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts import file_sha256

#: Tree settings chosen on the CodiEsp dev split (MODEL_CARD.md of the shipped coder).
TREE_PARAMS = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0,
               "early_stopping": False, "random_state": 0}


def fit_tree_model(features: np.ndarray, labels: np.ndarray, params: dict | None = None):
    """The fitted sklearn classifier (probability of "the coders wrote this code")."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(set(labels.tolist())) < 2:
        raise ValueError("the coder needs candidate codes that the coders wrote and some they did not; the training "
                         "notes gave only one kind: check that their gold codes are of the coded vocabulary")
    return HistGradientBoostingClassifier(**{**TREE_PARAMS, **(params or {})}).fit(features, labels)


def export_tree_model(model, n_features: int, out_dir: Path, feature_names: Sequence[str], threshold: float,
                      model_id: str, meta: dict) -> dict:
    """Write ``model.onnx`` and ``artifact.json`` into ``out_dir``; returns the artifact metadata."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_model = convert_sklearn(model, initial_types=[("features", FloatTensorType([None, n_features]))],
                                 options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    path = out_dir / "model.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    artifact = {"model_id": model_id, "kind": "document-coder", "onnx_file": path.name, "sha256": file_sha256(path),
                "feature_names": list(feature_names), "threshold": round(float(threshold), 4),
                "tree_params": TREE_PARAMS, "exported_at": dt.date.today().isoformat(), **meta}
    (out_dir / "artifact.json").write_text(json.dumps(artifact, indent=2) + "\n")
    return artifact
