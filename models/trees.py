"""Gradient-boosted tree classifiers exported to ONNX: the shared training and export step of the document coder
and the feature reranker (needs the [train] extra: scikit-learn and skl2onnx).

Histogram gradient boosting: the features mix scales (cosines, ranks, counts, log priors) and interact, which
trees take as they are, and a few thousand labelled rows suffice. Exported as ONNX (``TreeEnsembleClassifier``,
probabilities without a ZipMap) so that run time needs onnxruntime only. Fixed seed, no early stopping: the same
data gives the same model.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .artifacts import file_sha256


def fit_trees(features: np.ndarray, labels: np.ndarray, params: dict):
    """The fitted sklearn ``HistGradientBoostingClassifier`` (``params`` are its keyword arguments)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**params).fit(features, labels)


def export_trees(model, out_dir: Path, feature_names: Sequence[str], artifact: dict) -> dict:
    """Write ``model.onnx`` (input ``features``: float32 (n, len(feature_names))) and ``artifact.json``.

    ``artifact``: the artifact's own fields (``model_id``, ``kind``, ...); the file name, hash, feature names and
    export date are added here. Returns the written metadata.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_model = convert_sklearn(model, initial_types=[("features", FloatTensorType([None, len(feature_names)]))],
                                 options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    path = out_dir / "model.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    meta = {**artifact, "onnx_file": path.name, "sha256": file_sha256(path), "feature_names": list(feature_names),
            "exported_at": dt.date.today().isoformat()}
    (out_dir / "artifact.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
