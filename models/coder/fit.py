"""Training the coder's scorer and writing its artifact (needs the [train] extra: scikit-learn and skl2onnx).

A histogram gradient-boosted tree model (``models.trees``): the features mix scales (cosines, counts, log priors)
and interact (a negated mention's code is worth something only when the site codes it anyway), and 500 coded notes
are enough for a few hundred shallow trees.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..trees import export_trees, fit_trees

#: Tree settings chosen on the CodiEsp dev split (MODEL_CARD.md of the shipped coder).
TREE_PARAMS = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0,
               "early_stopping": False, "random_state": 0}


def fit_tree_model(features: np.ndarray, labels: np.ndarray, params: dict | None = None):
    """The fitted sklearn classifier (probability of "the coders wrote this code")."""
    if len(set(labels.tolist())) < 2:
        raise ValueError("the coder needs candidate codes that the coders wrote and some they did not; the training "
                         "notes gave only one kind: check that their gold codes are of the coded vocabulary")
    return fit_trees(features, labels, {**TREE_PARAMS, **(params or {})})


def export_tree_model(model, n_features: int, out_dir: Path, feature_names: Sequence[str], threshold: float,
                      model_id: str, meta: dict) -> dict:
    """Write ``model.onnx`` and ``artifact.json`` into ``out_dir``; returns the artifact metadata."""
    if n_features != len(feature_names):
        raise ValueError(f"{n_features} features but {len(feature_names)} feature names")
    return export_trees(model, Path(out_dir), feature_names, {
        "model_id": model_id, "kind": "document-coder", "threshold": round(float(threshold), 4),
        "tree_params": TREE_PARAMS, **meta})
