"""Affirmed patient mentions -> derived OMOP clinical events (CONDITION_OCCURRENCE, DRUG_EXPOSURE,
PROCEDURE_OCCURRENCE), the opt-in ``clin-linker run --derive-clinical-tables``.

Why: an OMOP team analyses clinical event tables, not NOTE_NLP. Only what the note asserts of this patient now
becomes an event: ``term_exists = 'Y'`` (not negated, uncertain, hypothetical or about a relative) and
``term_temporal = 'present'`` (not historical); NIL mentions never do.

Routing follows OMOP: the domain of the *standard* concept the linked concept "Maps to" picks the table; without
a standard concept (no Athena vocabulary loaded) the linked concept's own domain does, and the event is written
with concept id 0 ("No matching concept") and the linked code as its source, as OMOP ETL conventions ask for
unmapped source codes.

Fields:
- ``*_concept_id``: the standard concept via Maps to, else 0 (never a local id >= 2e9);
- ``*_source_concept_id``: the linked concept's id (a local id is allowed there, with its CONCEPT row);
- ``*_source_value``: the linked concept's code (e.g. ``E11.9``), cut to varchar(50);
- ``*_type_concept_id``: :data:`NLP_TYPE_CONCEPT_ID`;
- ``person_id`` and the date from the note (``note_date``, else the date of ``note_datetime``).

One event per person + concept + date: the id is a deterministic 63-bit hash of (table, person, concept, date),
so mentions repeated in a note, in several notes, or in a re-run all land on the same row.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..ontologies.local_ids import LOCAL_ID_MIN

if TYPE_CHECKING:  # type hints only: `clin-linker --help` must not pay for importing spaCy
    from spacy.tokens import Doc, Span

    from ..ontologies.store import ConceptStore, StoredConcept

#: OMOP Type Concept "NLP" (vocabulary "Type Concept", standard, CDM v5.4 type-concept reform): the provenance of
#: every derived row. Not in the Eunomia vocabulary (its release, v5.0 18-JAN-19, predates the Type Concept
#: vocabulary); it is the id OHDSI NLP-derived condition loads filter on (``condition_type_concept_id = 32858
#: --NLP``). :func:`check_type_concept` verifies it against the store when the store holds Type Concepts.
NLP_TYPE_CONCEPT_ID = 32858
NLP_TYPE_CONCEPT_NAME = "NLP"
PERSON_ID_MAX = 2**31 - 1  # CDM person_id is INTEGER
SOURCE_VALUE_MAX = 50  # *_source_value are varchar(50) in CDM v5.4


@dataclass(frozen=True)
class EventTable:
    """Where one OMOP domain's events go, and the names of its columns."""

    table: str
    id_column: str
    concept_column: str
    date_column: str
    type_column: str
    source_value_column: str
    source_concept_column: str
    end_date_column: str | None = None  # a NOT NULL end date (DRUG_EXPOSURE): the start date, for lack of better


#: OMOP domain_id -> the table its affirmed mentions become.
EVENT_TABLES: dict[str, EventTable] = {
    "Condition": EventTable("condition_occurrence", "condition_occurrence_id", "condition_concept_id",
                            "condition_start_date", "condition_type_concept_id", "condition_source_value",
                            "condition_source_concept_id"),
    "Drug": EventTable("drug_exposure", "drug_exposure_id", "drug_concept_id", "drug_exposure_start_date",
                       "drug_type_concept_id", "drug_source_value", "drug_source_concept_id",
                       end_date_column="drug_exposure_end_date"),
    "Procedure": EventTable("procedure_occurrence", "procedure_occurrence_id", "procedure_concept_id",
                            "procedure_date", "procedure_type_concept_id", "procedure_source_value",
                            "procedure_source_concept_id"),
}
TABLES_BY_NAME: dict[str, EventTable] = {t.table: t for t in EVENT_TABLES.values()}

#: The columns of an event candidate, as workers stage them for the sink.
EVENT_COLUMNS = ("event_table", "event_id", "person_id", "concept_id", "start_date", "type_concept_id",
                 "source_value", "source_concept_id", "note_id", "nlp_system")


def standard_concept(store: ConceptStore, key: str) -> StoredConcept | None:
    """The standard concept ``key`` stands for (itself, or its first Maps-to target), with a real Athena id.

    Mirrors ``ConceptStore.standard_concept_id`` but returns the concept, whose domain routes the event.
    """
    if key not in store:
        return None
    concept = store[key]
    if concept.standard_concept == "S" and concept.omop_concept_id < LOCAL_ID_MIN:
        return concept
    for target in store.maps_to(key):
        if target in store and store[target].omop_concept_id < LOCAL_ID_MIN:
            return store[target]
    return None


def event_id(table: str, person_id: int, concept_id: int, source_concept_id: int, day: dt.date) -> int:
    """Deterministic 63-bit id of one person + concept + date event.

    With no standard concept (id 0) the source concept keeps unrelated unmapped codes apart.
    """
    concept = str(concept_id) if concept_id else f"source:{source_concept_id}"
    text = f"{table}\x1f{person_id}\x1f{concept}\x1f{day.isoformat()}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") & (2**63 - 1)


def note_person_and_date(note_id: int, fields: Mapping[str, object]) -> tuple[int, dt.date] | str:
    """``(person_id, event date)`` of a note, or why it cannot have derived events (names note and field)."""
    person_id = fields.get("person_id")
    if person_id is None:
        return f"note {note_id}: field person_id is missing; derived events need the patient"
    if not isinstance(person_id, int) or isinstance(person_id, bool) or not 0 <= person_id <= PERSON_ID_MAX:
        return f"note {note_id}: field person_id {person_id!r} does not fit CDM person_id (integer 0..{PERSON_ID_MAX})"
    for name in ("note_date", "note_datetime"):
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            return person_id, value.date()
        if isinstance(value, dt.date):
            return person_id, value
        try:
            return person_id, dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            return f"note {note_id}: field {name} {str(value)[:40]!r} is not an ISO date"
    return f"note {note_id}: fields note_date and note_datetime are missing; derived events need a date"


def is_affirmed_present(span: Span) -> bool:
    """term_exists = 'Y' and term_temporal = 'present' for this mention (DESIGN §2 rules)."""
    return not (span._.is_negated or span._.is_family or span._.is_hypothetical or span._.is_uncertain
                or span._.is_historical)


def event_rows(doc: Doc, note_id: int, person_id: int, day: dt.date, store: ConceptStore, system: str) -> list[dict]:
    """Event candidates (:data:`EVENT_COLUMNS`) for the affirmed, present, linked mentions of ``doc``.

    Duplicates (same event id) are kept here; the sink keeps one row per id across notes and runs.
    """
    rows = []
    for span in doc.ents:
        key = span._.concept
        if key is None or key not in store or not is_affirmed_present(span):
            continue
        linked = store[key]
        standard = standard_concept(store, key)
        target = EVENT_TABLES.get(standard.domain_id if standard else linked.domain_id)
        if target is None:
            continue
        concept_id = standard.omop_concept_id if standard else 0
        rows.append({
            "event_table": target.table,
            "event_id": event_id(target.table, person_id, concept_id, linked.omop_concept_id, day),
            "person_id": person_id,
            "concept_id": concept_id,
            "start_date": day,
            "type_concept_id": NLP_TYPE_CONCEPT_ID,
            "source_value": linked.concept_code[:SOURCE_VALUE_MAX],
            "source_concept_id": linked.omop_concept_id,
            "note_id": note_id,
            "nlp_system": system,
        })
    return rows


def check_type_concept(store: ConceptStore) -> str:
    """Verify :data:`NLP_TYPE_CONCEPT_ID` against the store: 'verified', or 'absent' when the store has no such id.

    Raises when the store holds that id as something other than the Type Concept "NLP" (a wrong constant must
    not silently mislabel every derived row).
    """
    for concept in store.concepts():
        if concept.omop_concept_id == NLP_TYPE_CONCEPT_ID:
            if concept.vocabulary_id != "Type Concept" or concept.concept_name != NLP_TYPE_CONCEPT_NAME:
                raise ValueError(
                    f"concept {NLP_TYPE_CONCEPT_ID} in the store at {store.directory} is "
                    f"{concept.vocabulary_id} {concept.concept_name!r}, not Type Concept 'NLP'; "
                    "derived rows would carry a wrong *_type_concept_id")
            return "verified"
    return "absent"
