"""The row schema of every table clin-linker writes or stages, as pyarrow schemas: the one list of its columns.

Why here: the row builder (pipeline.omop), the staging shards (beam_jobs.job) and the sinks all take their columns
and types from these schemas, and tests/test_schemas.py checks them against the DDL files next to this module, so
a column can only be added in one place (and in the DDL).

- CDM tables (:data:`NOTE_NLP`, :data:`CONCEPT`, the derived event tables in :data:`EVENT_TABLES`) and clin-linker's
  :data:`EVENT_SOURCE`, :data:`NOTE_CODE`, :data:`RUN` and :data:`MENTION`: the columns we write, in DDL order,
  with the DDL's types (event tables: only the columns we fill; the others stay NULL).
- Staged rows (what workers write to Parquet for the sink): :data:`STAGED_NOTE_NLP` is NOTE_NLP plus the
  mention's structured fields (label, linked concept, score, context flags, section, span, top candidates), so
  summaries and later outputs read them instead of parsing ``term_modifiers``; the sink writes the NOTE_NLP
  columns to NOTE_NLP and the others to :data:`MENTION`.
  :data:`STAGED_EVENT` is one derived-event candidate, whichever table it goes to.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = ["CONCEPT", "EVENT_SOURCE", "EVENT_TABLES", "EventTable", "MENTION", "NOTE_CODE", "NOTE_NLP", "NOTE_STATE",
           "RUN", "STAGED_EVENT", "STAGED_NOTE_NLP", "duckdb_type", "postgresql_type"]

NOTE_NLP = pa.schema([
    ("note_nlp_id", pa.int64()), ("note_id", pa.int64()), ("section_concept_id", pa.int32()),
    ("snippet", pa.string()), ("offset", pa.string()), ("lexical_variant", pa.string()),
    ("note_nlp_concept_id", pa.int32()), ("note_nlp_source_concept_id", pa.int32()),
    ("nlp_system", pa.string()), ("nlp_date", pa.date32()), ("nlp_datetime", pa.timestamp("us")),
    ("term_exists", pa.string()), ("term_temporal", pa.string()), ("term_modifiers", pa.string()),
])

#: NOTE_NLP + what a mention is beyond its CDM row. ``concept_key`` None = NIL (then ``vocabulary_id`` is None
#: too); ``score`` is the linker's unrounded score (None when the linker gave none); ``section`` None = before
#: any section header; ``start_char``/``end_char`` the span in the note text (``lexical_variant`` is cut at 250
#: characters, so its length does not give the end); ``candidates`` the linker's top candidates as JSON
#: ``[{concept_key, concept_name, score}]``, best first.
STAGED_NOTE_NLP = pa.schema(list(NOTE_NLP) + [
    ("label", pa.string()), ("concept_key", pa.string()), ("vocabulary_id", pa.string()), ("score", pa.float64()),
    ("negated", pa.bool_()), ("family", pa.bool_()), ("hypothetical", pa.bool_()), ("uncertain", pa.bool_()),
    ("historical", pa.bool_()), ("section", pa.string()), ("start_char", pa.int32()), ("end_char", pa.int32()),
    ("candidates", pa.string()),
])

CONCEPT = pa.schema([
    ("concept_id", pa.int32()), ("concept_name", pa.string()), ("domain_id", pa.string()),
    ("vocabulary_id", pa.string()), ("concept_class_id", pa.string()), ("standard_concept", pa.string()),
    ("concept_code", pa.string()), ("valid_start_date", pa.date32()), ("valid_end_date", pa.date32()),
    ("invalid_reason", pa.string()),
])

#: One derived-event candidate as workers stage it; ``event_table`` names its :class:`EventTable`.
STAGED_EVENT = pa.schema([
    ("event_table", pa.string()), ("event_id", pa.int64()), ("person_id", pa.int32()),
    ("concept_id", pa.int32()), ("start_date", pa.date32()), ("type_concept_id", pa.int32()),
    ("source_value", pa.string()), ("source_concept_id", pa.int32()), ("note_id", pa.int64()),
    ("nlp_system", pa.string()),
])

#: clin-linker's bookkeeping table (not CDM): which note and system support each derived event.
EVENT_SOURCE = pa.schema([
    ("event_table", pa.string()), ("event_id", pa.int64()), ("note_id", pa.int64()), ("nlp_system", pa.string()),
])

#: clin-linker's per-note ranked code lists (not CDM; ``clin-linker code --db``).
NOTE_CODE = pa.schema([
    ("note_id", pa.int64()), ("coder", pa.string()), ("code_rank", pa.int32()), ("vocabulary_id", pa.string()),
    ("concept_code", pa.string()), ("concept_id", pa.int32()), ("score", pa.float64()), ("accepted", pa.bool_()),
    ("modifiers", pa.string()), ("evidence", pa.string()),
])


#: clin-linker's run log (not CDM): one row per ``clin-linker run``, what a review report says about the run as a
#: whole (counts, time, inputs, NIL threshold, vocabularies); JSON text in the ``dead_letter_reasons``,
#: ``note_files`` and ``vocabularies`` columns.
RUN = pa.schema([
    ("run_id", pa.string()), ("nlp_system", pa.string()), ("started_at", pa.timestamp("us")), ("seconds", pa.float64()),
    ("notes_read", pa.int64()), ("notes_coded", pa.int64()), ("notes_dead_lettered", pa.int64()),
    ("dead_letter_reasons", pa.string()), ("dead_letter_file", pa.string()), ("note_files", pa.string()),
    ("note_format", pa.string()), ("nil_threshold", pa.float64()), ("vocabularies", pa.string()),
    ("coder", pa.string()), ("ended_at", pa.timestamp("us")), ("mode", pa.string()), ("notes_unchanged", pa.int64()),
])

#: clin-linker's record of what each note was last coded from (not CDM): ``clin-linker run --incremental`` re-codes a
#: note only when its text's SHA-256 differs from this one for the same ``nlp_system``.
NOTE_STATE = pa.schema([
    ("note_id", pa.int64()), ("nlp_system", pa.string()), ("text_sha256", pa.string()), ("run_id", pa.string()),
])

#: clin-linker's mention details (not CDM): one row per NOTE_NLP row of a run, the :data:`STAGED_NOTE_NLP` columns
#: beyond NOTE_NLP (every one but ``run_id`` comes from there by name), so readers never parse ``term_modifiers``.
MENTION = pa.schema([
    ("note_nlp_id", pa.int64()), ("run_id", pa.string()), ("note_id", pa.int64()), ("nlp_system", pa.string()),
    ("start_char", pa.int32()), ("end_char", pa.int32()), ("label", pa.string()), ("concept_key", pa.string()),
    ("vocabulary_id", pa.string()), ("score", pa.float64()), ("negated", pa.bool_()), ("family", pa.bool_()),
    ("hypothetical", pa.bool_()), ("uncertain", pa.bool_()), ("historical", pa.bool_()), ("section", pa.string()),
    ("candidates", pa.string()),
])


@dataclass(frozen=True)
class EventTable:
    """One derived clinical event table: the OMOP domain it holds, the CDM columns we write (DDL order) and,
    for each of them, the :data:`STAGED_EVENT` column that fills it."""

    name: str
    domain_id: str
    schema: pa.Schema
    staged: tuple[str, ...]

    def column(self, staged: str) -> str:
        """The first CDM column filled from staged column ``staged`` (e.g. "event_id" -> the table's id)."""
        return self.schema.names[self.staged.index(staged)]


def _event_table(name: str, domain_id: str, columns: list[tuple[str, pa.DataType, str]]) -> EventTable:
    return EventTable(name, domain_id, pa.schema([(c, t) for c, t, _ in columns]), tuple(s for _, _, s in columns))


EVENT_TABLES: tuple[EventTable, ...] = (
    _event_table("condition_occurrence", "Condition", [
        ("condition_occurrence_id", pa.int64(), "event_id"), ("person_id", pa.int32(), "person_id"),
        ("condition_concept_id", pa.int32(), "concept_id"), ("condition_start_date", pa.date32(), "start_date"),
        ("condition_type_concept_id", pa.int32(), "type_concept_id"),
        ("condition_source_value", pa.string(), "source_value"),
        ("condition_source_concept_id", pa.int32(), "source_concept_id"),
    ]),
    _event_table("drug_exposure", "Drug", [
        ("drug_exposure_id", pa.int64(), "event_id"), ("person_id", pa.int32(), "person_id"),
        ("drug_concept_id", pa.int32(), "concept_id"), ("drug_exposure_start_date", pa.date32(), "start_date"),
        # NOT NULL in the CDM and unknown from a note: the start date, for lack of better
        ("drug_exposure_end_date", pa.date32(), "start_date"),
        ("drug_type_concept_id", pa.int32(), "type_concept_id"), ("drug_source_value", pa.string(), "source_value"),
        ("drug_source_concept_id", pa.int32(), "source_concept_id"),
    ]),
    _event_table("procedure_occurrence", "Procedure", [
        ("procedure_occurrence_id", pa.int64(), "event_id"), ("person_id", pa.int32(), "person_id"),
        ("procedure_concept_id", pa.int32(), "concept_id"), ("procedure_date", pa.date32(), "start_date"),
        ("procedure_type_concept_id", pa.int32(), "type_concept_id"),
        ("procedure_source_value", pa.string(), "source_value"),
        ("procedure_source_concept_id", pa.int32(), "source_concept_id"),
    ]),
)

_DUCKDB_TYPES = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.string(): "VARCHAR", pa.date32(): "DATE",
                 pa.timestamp("us"): "TIMESTAMP", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}


def duckdb_type(data_type: pa.DataType) -> str:
    """The DuckDB column type (as information_schema spells it) that holds ``data_type``."""
    return _DUCKDB_TYPES[data_type]

_POSTGRESQL_TYPES = {pa.int64(): "bigint", pa.int32(): "integer", pa.string(): "character varying", pa.date32(): "date",
                     pa.timestamp("us"): "timestamp without time zone", pa.float64(): "double precision",
                     pa.bool_(): "boolean"}


def postgresql_type(data_type: pa.DataType) -> str:
    """The PostgreSQL column type (as information_schema spells it; also valid in CREATE TABLE) that holds
    ``data_type``."""
    return _POSTGRESQL_TYPES[data_type]
