"""A note's candidate codes of one vocabulary, gathered from its linked mentions (shared by both coders).

Every mention (``doc.ents``) proposes its top candidates of the vocabulary (``span._.candidates``, best first;
with the linker's ``targets`` starting with the vocabulary, those are all of it), whatever the linker's winner
is. An ICD-10-CM candidate that is a category is first completed by the specificity rules
(``ontologies.icd10cm_specificity``): "constipation" retrieves K59.0, a coder writes K59.00. An ICD-10-PCS prefix
likewise (``ontologies.icd10pcs_specificity``, reading the mention for its approach): "laparoscopic
cholecystectomy" retrieves 0FT4, a coder writes 0FT44ZZ. Where the linker also read each mention with its words
around it (``window_k``, set for :data:`WINDOW_VOCABULARIES`), those candidates propose codes too (evidence source
"window"): "CT" retrieves nothing specific, "Abdominal CT of the pelvis" retrieves BW2G. Negated, family
and hypothetical mentions propose codes too: each coder decides what their flags are worth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spacy.tokens import Doc, Span

from ...ontologies.icd10cm_specificity import VOCABULARY_ID as ICD10CM
from ...ontologies.icd10cm_specificity import Specificity
from ...ontologies.icd10pcs_specificity import VOCABULARY_ID as ICD10PCS
from ...ontologies.icd10pcs_specificity import PcsSpecificity, approach_of
from ...ontologies.index import vocabulary_of
from ..abbreviations import window_query
from ..extensions import CONTEXT_FLAGS
from .evidence import Evidence


def span_flags(span: Span) -> tuple[str, ...]:
    """The assertion flags (``extensions.CONTEXT_FLAGS``) that are true on ``span``."""
    return tuple(f for f in CONTEXT_FLAGS if getattr(span._, f))


def mention_candidates(span: Span, vocabulary: str) -> list[tuple[str, float]]:
    """The span's candidates of ``vocabulary``, best first."""
    return [(key, float(score)) for key, score in span._.candidates or () if vocabulary_of(key) == vocabulary]


#: Vocabularies whose coder also reads the window candidates: ICD-10-PCS, where the body part that decides a code
#: is beside the mention ("CT of the abdomen"); on CodiEsp-P dev they find 347 of the 817 gold codes among their
#: top 10, the mentions alone 225 (382 together).
WINDOW_VOCABULARIES = frozenset({ICD10PCS})


def specificity_of(concepts, vocabulary: str) -> Specificity | PcsSpecificity | None:
    """The specificity rules of ``vocabulary`` over a store's ``concepts`` (None: codes are written as retrieved)."""
    if vocabulary == ICD10CM:
        return Specificity(concepts)
    if vocabulary == ICD10PCS:
        return PcsSpecificity(concepts)
    return None


@dataclass
class CandidateCode:
    """A code some mention of the note proposed, with every proposing mention (in text order)."""

    concept_key: str
    modifiers: tuple[str, ...] = ()
    evidence: list[Evidence] = field(default_factory=list)


class CandidateCollector:
    """Collects a note's candidate codes of ``vocabulary``: the top ``per_mention`` candidates of each mention.

    ``specificity``: the vocabulary's rules (:func:`specificity_of`; needed for ICD10CM and ICD10PCS, other
    vocabularies' codes are taken as they are).
    """

    def __init__(self, vocabulary: str, specificity: Specificity | PcsSpecificity | None, per_mention: int = 10):
        if vocabulary in (ICD10CM, ICD10PCS) and specificity is None:
            raise ValueError(f"coding into {vocabulary} needs its specificity rules: pass specificity_of(store "
                             "concepts, vocabulary)")
        self.vocabulary = vocabulary
        self.specificity = specificity
        self.per_mention = per_mention
        self._written: dict[tuple[str, str | None], tuple[str, tuple[str, ...]] | None] = {}

    def completed(self, concept_key: str, mention: str = "") -> tuple[str, tuple[str, ...]] | None:
        """The key a coder writes for a retrieved ``concept_key`` and its specificity flag; None if invalid.
        ``mention``: the text that proposed it (ICD-10-PCS reads the approach there)."""
        if self.specificity is None:
            return concept_key, ()
        approach = approach_of(mention) if self.vocabulary == ICD10PCS else None
        if (concept_key, approach) not in self._written:
            code = concept_key.split(":", 1)[1]
            if self.specificity.is_valid(code.rstrip("-")):
                completed, flag = (self.specificity.complete(code, mention) if approach is not None
                                   else self.specificity.complete(code))
                self._written[concept_key, approach] = f"{self.vocabulary}:{completed}", ((flag,) if flag else ())
            else:
                self._written[concept_key, approach] = None
        return self._written[concept_key, approach]

    def __call__(self, doc: Doc) -> dict[str, CandidateCode]:
        found: dict[str, CandidateCode] = {}
        for span in doc.ents:
            flags = span_flags(span)
            retrieved = [(mention_candidates(span, self.vocabulary), span.text, "retrieval")]
            if span._.window_candidates is not None:  # the linker's window_k: the mention with its words around it
                window = [(k, s) for k, s in span._.window_candidates if vocabulary_of(k) == self.vocabulary]
                retrieved.append((window, window_query(span), "window"))
            for candidates, text, source in retrieved:
                for rank, (key, score) in enumerate(candidates[:self.per_mention]):
                    written = self.completed(key, text)
                    if written is None:
                        continue
                    key, modifiers = written
                    candidate = found.setdefault(key, CandidateCode(key, modifiers))
                    candidate.evidence.append(Evidence(span.start_char, span.end_char, span.text, span.label_, rank,
                                                       score, flags, source))
        return found
