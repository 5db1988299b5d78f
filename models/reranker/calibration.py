"""NIL probability: how likely a reranked candidate is the mention's concept, calibrated on dev data.

Why a fitted probability and not a raw threshold on the cross-encoder logit: logits are not comparable across
mentions (a hard mention's best logit can be low and still right), and the bi-encoder's cosine says something
the cross-encoder does not (how close the vocabulary is at all). A logistic model (Platt scaling) over

- ``logit``: the candidate's cross-encoder logit,
- ``margin``: its logit minus the best other candidate's logit (clipped to +-``MARGIN_CAP``),
- ``best_cosine``: the bi-encoder cosine of the mention's best retrieved candidate (the same for all its
  candidates),

gives P(candidate is right). The cosine is the mention's best, not the candidate's own: the candidate's own cosine
is already one of the reranker's inputs, and a per-mention cosine keeps the probability monotone in the logit within
a mention (logit and margin both grow with it), so ordering by probability is ordering by the reranker. Files
fitted before this (feature ``cosine``: the candidate's own cosine) still load and score as fitted.

Every weight is constrained to be >= 0, so the probability never decreases when a
feature grows (monotone: a better score can never make a mention *more* NIL) and the sigmoid keeps it in [0, 1].
It is fitted on every retrieved candidate of dev mentions in the unseen-concept simulation (a share of gold
concepts removed from the dictionary), so it sees mentions whose right concept is missing. A mention is NIL when
its best candidate's probability is below ``threshold``, chosen on the same data as the threshold with the most
recall whose precision reaches a stated target on every corpus, where a right abstention is either a mention linking would get
wrong (truly NIL or wrong concept: "abstention" precision, the default) or only a truly-NIL one ("nil").

Run-time side is numpy only; fitting uses scipy (a run-time dependency already).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FEATURES = ("logit", "margin", "best_cosine")
#: Every feature a calibration file may name (``cosine``: the candidate's own, in files of the first rerankers).
KNOWN_FEATURES = ("logit", "margin", "best_cosine", "cosine")
#: Margin of a lone candidate (nothing to compare with), and the clip of every margin.
MARGIN_CAP = 10.0
CALIBRATION_FILE = "calibration.json"


def candidate_features(logits: np.ndarray, cosines: np.ndarray, names: tuple[str, ...] = FEATURES) -> np.ndarray:
    """(n, len(names)) features of one mention's n candidates (columns named by ``names``: ``KNOWN_FEATURES``)."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    cosines = np.asarray(cosines, dtype=np.float64).reshape(-1)
    n = len(logits)
    if n == 0:
        return np.zeros((0, len(names)))
    if n == 1:
        margin = np.array([MARGIN_CAP])
    else:
        order = np.argsort(-logits, kind="stable")
        best, second = logits[order[0]], logits[order[1]]
        others_best = np.where(np.arange(n) == order[0], second, best)
        margin = np.clip(logits - others_best, -MARGIN_CAP, MARGIN_CAP)
    columns = {"logit": logits, "margin": margin, "cosine": cosines, "best_cosine": np.full(n, cosines.max())}
    return np.stack([columns[name] for name in names], axis=1)


@dataclass
class NilCalibrator:
    """P(candidate is right) = sigmoid(bias + weights . features), weights >= 0; NIL below ``threshold``."""

    weights: list[float]
    bias: float
    threshold: float
    features: tuple[str, ...] = FEATURES
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.features):
            raise ValueError(f"calibration has {len(self.weights)} weights for features {self.features}")
        if set(self.features) - set(KNOWN_FEATURES):
            raise ValueError(f"calibration names unknown features {sorted(set(self.features) - set(KNOWN_FEATURES))}; "
                             f"known: {KNOWN_FEATURES}")
        if any(w < 0 for w in self.weights):
            raise ValueError("calibration weights must be >= 0 (the probability must be monotone in every feature)")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"NIL threshold must be in [0, 1], got {self.threshold}")

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one per row of ``features`` (:func:`candidate_features` of ``self.features``)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, len(self.features))
        z = self.bias + x @ np.asarray(self.weights, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))

    def to_json(self) -> dict:
        return {"features": list(self.features), "weights": [float(w) for w in self.weights], "bias": float(self.bias),
                "threshold": float(self.threshold), "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        """Write ``calibration.json`` (into ``path`` if it is a directory)."""
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "NilCalibrator":
        """Read a calibration file (or a model directory's ``calibration.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: fit one with `clin-linker model calibrate-reranker`")
        blob = json.loads(path.read_text())
        return cls([float(w) for w in blob["weights"]], float(blob["bias"]), float(blob["threshold"]),
                   tuple(blob["features"]), blob.get("meta", {}))

    @classmethod
    def uncalibrated(cls) -> "NilCalibrator":
        """sigmoid(logit), NIL below 0.5: for a reranker nobody calibrated yet (development models)."""
        return cls([1.0, 0.0, 0.0], 0.0, 0.5, meta={"fitted": False})


def fit_calibrator(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3, meta: dict | None = None
                   ) -> NilCalibrator:
    """Logistic regression with non-negative weights (L-BFGS-B bounds) on standardised features.

    ``labels``: 1 where the candidate carries a gold id. The threshold is left at 0.5; pick it with
    :func:`choose_threshold`.
    """
    from scipy.optimize import minimize

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"calibration needs as many labels as feature rows (got {len(x)} rows, {len(y)} labels)")
    if y.min() == y.max():
        raise ValueError("calibration needs both right and wrong candidates in its data")
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    xs = (x - mean) / scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + xs @ theta[1:]
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        nll = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * float(theta[1:] @ theta[1:])
        g = p - y
        grad = np.r_[g.mean(), xs.T @ g / len(y) + l2 * theta[1:]]
        return float(nll), grad

    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    w_std = np.maximum(res.x[1:], 0.0)
    weights = w_std / scale  # back to raw feature units; scale > 0 keeps the sign
    bias = float(res.x[0] - (w_std * mean / scale).sum())
    return NilCalibrator([float(w) for w in weights], bias, 0.5, FEATURES,
                         {"fitted": True, "n_candidates": int(len(y)), "positive_share": round(float(y.mean()), 4),
                          "l2": l2, "converged": bool(res.success), **(meta or {})})


def nil_precision_recall(best_probability: np.ndarray, is_nil: np.ndarray, threshold: float
                         ) -> tuple[float, float, int]:
    """(precision, recall, abstained) of "NIL when best probability < threshold" against the truly-NIL mentions."""
    p = np.asarray(best_probability, dtype=np.float64)
    truth = np.asarray(is_nil, dtype=bool)
    abstain = p < threshold
    n = int(abstain.sum())
    hits = int((abstain & truth).sum())
    precision = hits / n if n else 1.0
    recall = hits / int(truth.sum()) if truth.any() else 0.0
    return precision, recall, n


def choose_threshold(best_probability: np.ndarray, is_nil: np.ndarray, target_precision: float,
                     groups: np.ndarray | None = None) -> dict:
    """Highest threshold (most recall) whose precision stays >= ``target_precision`` on this data.

    ``is_nil`` marks the mentions on which abstaining is right (truly NIL, or also wrongly linked ones).
    ``groups`` (one id per mention, e.g. its corpus): the precision must reach the target in every group, not only
    on the pooled mentions, so one large corpus cannot buy a threshold that abstains badly on a smaller one.
    Thresholds sit midway between consecutive distinct probabilities. Returns the threshold with the (pooled)
    precision and recall it gives, and the lowest group precision; when no threshold reaches the target, the one
    with the best precision (ties: more recall) among thresholds abstaining on at least 1% of the NIL mentions,
    flagged ``reached: False``.
    """
    p = np.asarray(best_probability, dtype=np.float64)
    truth = np.asarray(is_nil, dtype=bool)
    g = np.zeros(len(p), dtype=int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(p) == 0 or not truth.any():
        raise ValueError("choosing a NIL threshold needs mentions that truly have no concept (run the simulation)")
    values = np.unique(p)
    cuts = np.r_[(values[:-1] + values[1:]) / 2.0, values[-1] + 1e-9]
    best_ok, best_any = None, None
    for t in cuts:
        precision, recall, n = nil_precision_recall(p, truth, float(t))
        worst = min(nil_precision_recall(p[g == i], truth[g == i], float(t))[0] for i in np.unique(g))
        row = {"threshold": float(t), "precision": precision, "recall": recall, "abstained": n,
               "lowest_group_precision": worst}
        if worst >= target_precision and n and (best_ok is None or recall > best_ok["recall"]):
            best_ok = row
        if recall >= 0.01 and (best_any is None or (worst, recall) > (best_any["lowest_group_precision"],
                                                                     best_any["recall"])):
            best_any = row
    chosen = best_ok or best_any or {"threshold": 0.0, "precision": 1.0, "recall": 0.0, "abstained": 0,
                                     "lowest_group_precision": 1.0}
    return {**chosen, "target_precision": target_precision, "reached": best_ok is not None}


def monotone_check(calibrator: NilCalibrator, grid: Sequence[float] = tuple(np.linspace(-20, 20, 81))) -> bool:
    """True when the probability is non-decreasing along each feature on ``grid`` (others held at 0) and in [0, 1]."""
    for j in range(len(calibrator.features)):
        x = np.zeros((len(grid), len(calibrator.features)))
        x[:, j] = grid
        p = calibrator.probability(x)
        if np.any(np.diff(p) < 0) or p.min() < 0 or p.max() > 1:
            return False
    return True
