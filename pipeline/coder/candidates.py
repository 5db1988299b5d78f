"""A note's candidate codes of one vocabulary, gathered from its linked mentions (shared by both coders).

Every mention (``doc.ents``) proposes its top candidates of the vocabulary (``span._.candidates``, best first;
with the linker's ``targets`` starting with the vocabulary, those are all of it), whatever the linker's winner
is. An ICD-10-CM candidate that is a category is first completed by the specificity rules
(``ontologies.icd10cm_specificity``): "constipation" retrieves K59.0, a coder writes K59.00. Negated, family
and hypothetical mentions propose codes too: each coder decides what their flags are worth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spacy.tokens import Doc, Span

from ...ontologies.icd10cm_specificity import VOCABULARY_ID as ICD10CM
from ...ontologies.icd10cm_specificity import Specificity
from ...ontologies.index import vocabulary_of
from ..extensions import CONTEXT_FLAGS
from .evidence import Evidence


def span_flags(span: Span) -> tuple[str, ...]:
    """The assertion flags (``extensions.CONTEXT_FLAGS``) that are true on ``span``."""
    return tuple(f for f in CONTEXT_FLAGS if getattr(span._, f))


def mention_candidates(span: Span, vocabulary: str) -> list[tuple[str, float]]:
    """The span's candidates of ``vocabulary``, best first."""
    return [(key, float(score)) for key, score in span._.candidates or () if vocabulary_of(key) == vocabulary]


@dataclass
class CandidateCode:
    """A code some mention of the note proposed, with every proposing mention (in text order)."""

    concept_key: str
    modifiers: tuple[str, ...] = ()
    evidence: list[Evidence] = field(default_factory=list)


class CandidateCollector:
    """Collects a note's candidate codes of ``vocabulary``: the top ``per_mention`` candidates of each mention.

    ``specificity``: the ICD-10-CM rules (needed when ``vocabulary`` is ICD10CM; other vocabularies' codes are
    taken as they are).
    """

    def __init__(self, vocabulary: str, specificity: Specificity | None, per_mention: int = 10):
        if vocabulary == ICD10CM and specificity is None:
            raise ValueError("coding into ICD10CM needs its specificity rules (the Tabular List): pass a Specificity")
        self.vocabulary = vocabulary
        self.specificity = specificity
        self.per_mention = per_mention
        self._written: dict[str, tuple[str, tuple[str, ...]] | None] = {}

    def completed(self, concept_key: str) -> tuple[str, tuple[str, ...]] | None:
        """The key a coder writes for a retrieved ``concept_key`` and its specificity flag; None if invalid."""
        if self.vocabulary != ICD10CM:
            return concept_key, ()
        if concept_key not in self._written:
            code = concept_key.split(":", 1)[1]
            if self.specificity.is_valid(code.rstrip("-")):
                completed, flag = self.specificity.complete(code)
                self._written[concept_key] = f"{ICD10CM}:{completed}", ((flag,) if flag else ())
            else:
                self._written[concept_key] = None
        return self._written[concept_key]

    def __call__(self, doc: Doc) -> dict[str, CandidateCode]:
        found: dict[str, CandidateCode] = {}
        for span in doc.ents:
            flags = span_flags(span)
            for rank, (key, score) in enumerate(mention_candidates(span, self.vocabulary)[:self.per_mention]):
                written = self.completed(key)
                if written is None:
                    continue
                key, modifiers = written
                candidate = found.setdefault(key, CandidateCode(key, modifiers))
                candidate.evidence.append(Evidence(span.start_char, span.end_char, span.text, span.label_, rank,
                                                   score, flags))
        return found
