"""The zero-shot document coder: a note's codes ranked from its mentions' retrieval alone, no trained model.

What it knows is what any coder knows before seeing a site's records:

- a code is worth its best mention: that mention's retrieval score, discounted by 0.9 per rank below the mention's
  best candidate (the runner-up of "constipation" is still a fair guess, its 5th candidate rarely is);
- ICD-10-CM codes diagnoses: a condition mention's code counts in full, others less (:data:`LABEL_WEIGHTS`, e.g. a
  procedure's nearest ICD-10-CM code, "biopsy" -> an "encounter for ..." code, is rarely what a coder writes);
- mentions with an excluded assertion flag propose nothing. By default (:data:`DEFAULT_EXCLUDED_FLAGS`) those
  are negated, family and hypothetical mentions (nothing the note asserts of the patient). Historical mentions do
  count (chronic and past conditions are coded), and so do uncertain ones: the ICD-10-CM guidelines (Section II.H)
  code an uncertain diagnosis ("probable", "suspected") as if established in inpatient records, which case
  reports resemble.

A code is accepted at :data:`ACCEPT_SCORE` (a verbatim vocabulary name of a condition scores 1.0; a near name
about 0.9); the ranked list keeps the rest. Figures: docs/coding.md.
"""
from __future__ import annotations

from collections.abc import Iterable

from spacy.tokens import Doc

from ..extensions import CONTEXT_FLAGS
from .candidates import CandidateCollector
from .evidence import DocumentCode

#: Assertion flags (``Span._`` names) whose mentions make no code by default.
DEFAULT_EXCLUDED_FLAGS: tuple[str, ...] = ("is_negated", "is_family", "is_hypothetical")
#: How much a mention of each NER label is worth as evidence of an ICD-10-CM code (unknown labels: 0.5).
LABEL_WEIGHTS: dict[str, float] = {"CONDITION": 1.0, "OBSERVATION": 0.9, "MEASUREMENT": 0.6, "PROCEDURE": 0.5,
                                   "DRUG": 0.4, "DEVICE": 0.4}
RANK_DISCOUNT = 0.9
ACCEPT_SCORE = 0.85


def check_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """``flags`` as a tuple, after checking they are assertion flag names."""
    flags = tuple(flags)
    unknown = [f for f in flags if f not in CONTEXT_FLAGS]
    if unknown:
        raise ValueError(f"unknown assertion flag(s) {unknown}; use names of {CONTEXT_FLAGS}")
    return flags


class ZeroShotCoder:
    """Ranks a note's candidate codes (:class:`CandidateCollector`) by their best mention's weighted score."""

    model_id = "zero-shot"

    def __init__(self, collector: CandidateCollector, excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS,
                 accept_score: float = ACCEPT_SCORE):
        self.collector = collector
        self.excluded_flags = check_flags(excluded_flags)
        self.accept_score = accept_score

    def __call__(self, doc: Doc) -> list[DocumentCode]:
        codes = []
        for candidate in self.collector(doc).values():
            evidence = tuple(e for e in candidate.evidence if not set(e.flags) & set(self.excluded_flags))
            if not evidence:
                continue
            score = max(LABEL_WEIGHTS.get(e.label, 0.5) * e.score * RANK_DISCOUNT ** e.rank for e in evidence)
            codes.append(DocumentCode(candidate.concept_key, score, score >= self.accept_score, evidence,
                                      candidate.modifiers))
        return sorted(codes, key=lambda c: (-c.score, c.concept_key))
