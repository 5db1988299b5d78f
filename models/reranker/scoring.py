"""Rerank one mention's retrieved candidates: the single definition the pipeline and the evaluation share.

Candidates are ordered by their calibrated probability (``calibration.NilCalibrator``), a monotone fusion of the
reranker logit, the logit margin and the mention's best bi-encoder cosine; ties keep the cross-encoder's order. With an
uncalibrated model (probability = sigmoid(logit)) this is exactly the cross-encoder's order. The mention is NIL
when the best probability is below the calibrator's threshold.

Which mentions skip reranking (a decisive one: its top candidate an exact name) is the linker's rule
(``pipeline.reranking.MentionReranker``), not this module's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import NilCalibrator, candidate_features


@dataclass(frozen=True)
class Reranked:
    """``order``: candidate positions best first; ``probabilities`` and ``logits`` aligned with ``order``."""

    order: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray

    @property
    def best_probability(self) -> float:
        return float(self.probabilities[0]) if len(self.probabilities) else 0.0


def rerank(logits: np.ndarray, cosines: np.ndarray, calibrator: NilCalibrator) -> Reranked:
    """Order candidates by calibrated probability (ties: higher logit, then retrieval order)."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    probabilities = calibrator.probability(candidate_features(logits, cosines, calibrator.features))
    order = np.lexsort((np.arange(len(logits)), -logits, -probabilities))
    return Reranked(order, probabilities[order], logits[order])
