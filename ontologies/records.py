"""The records every vocabulary loader produces (DESIGN §2 "Concept store").

Loaders only describe what their source says; ids for concepts without a real OMOP id are assigned
later, in one place (:mod:`.local_ids`), so that every vocabulary gets the same deterministic rule.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

DEFAULT_START = dt.date(1970, 1, 1)
DEFAULT_END = dt.date(2099, 12, 31)

#: name_type values allowed in the store (DESIGN §2).
NAME_TYPES = ("preferred", "synonym", "inclusion", "index_term", "layperson", "abbreviation")


def concept_key(vocabulary_id: str, concept_code: str) -> str:
    """The store's primary key: Athena vocabulary spelling + ':' + code (e.g. ``ICD10CM:E11.9``)."""
    return f"{vocabulary_id}:{concept_code}"


@dataclass
class Concept:
    """One concept as its vocabulary defines it.

    ``omop_concept_id`` is the real Athena id when the source carries one (Athena export), else None:
    the store builder then assigns a deterministic local id >= 2,000,000,000.
    ``attributes`` holds vocabulary-specific facts that have no CDM column (ICD-10-CM billable flag and
    chapter, SNOMED semantic tag, ...); it is stored as JSON.
    """

    vocabulary_id: str
    concept_code: str
    concept_name: str
    domain_id: str
    concept_class_id: str
    standard_concept: str | None = None
    omop_concept_id: int | None = None
    valid_start_date: dt.date = DEFAULT_START
    valid_end_date: dt.date = DEFAULT_END
    invalid_reason: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)

    @property
    def concept_key(self) -> str:
        return concept_key(self.vocabulary_id, self.concept_code)


@dataclass(frozen=True)
class Name:
    """A surface form of a concept used for matching and retrieval."""

    concept_key: str
    name: str
    name_type: str


@dataclass(frozen=True)
class Xref:
    """A cross-reference from a concept to a concept of another vocabulary (e.g. HPO → SNOMED).

    Unlike Athena "Maps to", an xref is not a curated standard mapping; it is kept so that a later
    build that also holds the target vocabulary can use it.
    """

    concept_key: str
    xref_key: str
    relation: str


@dataclass
class VocabularyPart:
    """Everything one loader read from one source."""

    vocabulary_id: str
    version: str
    source: str
    concepts: list[Concept] = field(default_factory=list)
    names: list[Name] = field(default_factory=list)
    maps_to: list[tuple[str, str]] = field(default_factory=list)
    xrefs: list[Xref] = field(default_factory=list)
    #: True for a packaged stand-in (the SNOMED Global Patient Set): a concept another part of the same build also
    #: defines (the user's Athena or RF2 SNOMED) is taken from that part; this part's names of it are kept.
    fallback: bool = False
