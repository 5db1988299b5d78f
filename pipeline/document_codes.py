"""A note's ranked code list in one vocabulary: the zero-shot document coder (issue 12's baseline).

One function, :func:`document_codes`, that ``clin-linker eval coding`` uses today and ``clin-linker code`` will use,
so that what is scored is what is emitted. It reads only what the ``clin_linker`` and ``clin_context`` components
already put on the spans; it changes nothing and needs no model of its own.

The ranking:

- every mention (``doc.ents``) proposes its best candidate of the vocabulary among ``span._.candidates``, whatever
  the linker's winner is (the default store mixes HPO and ICD-10-CM, and one winner per mention is often an HPO term);
  a candidate's vocabulary is the key's prefix before the first ":" ("ICD10CM:E11.9" -> "ICD10CM");
- a code's score is its best mention's score; its evidence is every mention that proposed it, in text order;
- codes are ranked by score, best first, ties by code, so the list is the same on every run;
- mentions with an excluded assertion flag propose nothing. By default (:data:`DEFAULT_EXCLUDED_FLAGS`) those are
  negated, family and hypothetical mentions (nothing the note asserts of the patient). Historical mentions do
  propose codes (chronic and past conditions are coded). Uncertain ones do too: the ICD-10-CM guidelines (Section
  II.H) code an uncertain diagnosis ("probable", "suspected") as if established in inpatient records, which case
  reports resemble, unlike NOTE_NLP's ``term_exists`` (``omop.assertion``), which says "N" for them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from spacy.tokens import Doc, Span

from . import extensions  # noqa: F401  (registers the Span extensions read here)
from .extensions import CONTEXT_FLAGS

#: Assertion flags (``Span._`` names) whose mentions make no code by default.
DEFAULT_EXCLUDED_FLAGS: tuple[str, ...] = ("is_negated", "is_family", "is_hypothetical")


@dataclass(frozen=True)
class Evidence:
    """One mention behind a code: character offsets into the note, its text, label, and the flags set on it."""

    start: int
    end: int
    text: str
    label: str
    score: float
    flags: tuple[str, ...]  # the CONTEXT_FLAGS that are true, e.g. ("is_historical",)


@dataclass(frozen=True)
class DocumentCode:
    """One code of a note: ``concept_key`` ("ICD10CM:I10"), its score (best evidence score) and its evidence."""

    concept_key: str
    score: float
    evidence: tuple[Evidence, ...]

    @property
    def code(self) -> str:
        """The vocabulary's own code ("I10"): the key after the vocabulary prefix."""
        return self.concept_key.split(":", 1)[1]


def vocabulary_of(concept_key: str) -> str:
    """The vocabulary of a concept key: its prefix before the first ":" ("HPO:HP:0000822" -> "HPO")."""
    return concept_key.split(":", 1)[0]


def best_candidate(span: Span, vocabulary: str) -> tuple[str, float] | None:
    """The span's best candidate of ``vocabulary`` (``span._.candidates`` is best first), or None."""
    for key, score in span._.candidates or ():
        if vocabulary_of(key) == vocabulary:
            return key, float(score)
    return None


def document_codes(doc: Doc, vocabulary: str = "ICD10CM",
                   excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS) -> list[DocumentCode]:
    """The note's codes of ``vocabulary``, best first (score, then code), each with its evidence spans.

    ``excluded_flags``: assertion flags (names in ``extensions.CONTEXT_FLAGS``) whose mentions propose no code;
    pass ``()`` to let every mention count.
    """
    excluded = tuple(excluded_flags)
    unknown = [f for f in excluded if f not in CONTEXT_FLAGS]
    if unknown:
        raise ValueError(f"document_codes: unknown assertion flag(s) {unknown}; use names of {CONTEXT_FLAGS}")
    found: dict[str, list[Evidence]] = {}
    for span in doc.ents:
        if any(getattr(span._, flag) for flag in excluded):
            continue
        best = best_candidate(span, vocabulary)
        if best is None:
            continue
        key, score = best
        flags = tuple(f for f in CONTEXT_FLAGS if getattr(span._, f))
        found.setdefault(key, []).append(Evidence(span.start_char, span.end_char, span.text, span.label_, score,
                                                  flags))
    codes = [DocumentCode(key, max(e.score for e in ev), tuple(ev)) for key, ev in found.items()]
    return sorted(codes, key=lambda c: (-c.score, c.concept_key))
