"""Derived OMOP clinical events (CONDITION_OCCURRENCE, DRUG_EXPOSURE, PROCEDURE_OCCURRENCE), the opt-in
``clin-linker run --derive-clinical-tables``: the rules about the note and the vocabulary. The rows themselves are
built from spans in :func:`.omop.event_rows`, next to NOTE_NLP's, with the same assertion rule and id hash.

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
- ``person_id`` and the date from the note (:func:`note_person_and_date`).

One event per person + concept + date: the id is a deterministic 63-bit hash of (table, person, concept, date)
(:func:`.omop.event_id`), so mentions repeated in a note, in several notes, or in a re-run all land on the same row.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type hints only: `clin-linker --help` imports this module and must stay fast
    from ..ontologies.store import ConceptStore

#: OMOP Type Concept "NLP" (vocabulary "Type Concept", standard, CDM v5.4 type-concept reform): the provenance of
#: every derived row. Not in the Eunomia vocabulary (its release, v5.0 18-JAN-19, predates the Type Concept
#: vocabulary); it is the id OHDSI NLP-derived condition loads filter on (``condition_type_concept_id = 32858
#: --NLP``). :func:`check_type_concept` verifies it against the store when the store holds Type Concepts.
NLP_TYPE_CONCEPT_ID = 32858
NLP_TYPE_CONCEPT_NAME = "NLP"
PERSON_ID_MAX = 2**31 - 1  # CDM person_id is INTEGER


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
