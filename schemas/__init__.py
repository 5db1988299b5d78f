"""clin_linker.schemas: OMOP CDM v5.4 DDL and the JSON Schemas of clin-linker's records.

Files (package data, read with :mod:`importlib.resources` so they work from an installed wheel):

- ``duckdb/omop_cdm_v54.sql``, ``postgresql/omop_cdm_v54.sql``: NOTE, NOTE_NLP, CONCEPT,
  CONDITION_OCCURRENCE, DRUG_EXPOSURE, PROCEDURE_OCCURRENCE; ``CREATE TABLE IF NOT EXISTS`` so they can
  run on every start. Deviations from the official DDL are listed at the top of each file.
- ``duckdb/clin_linker_event_source.sql``, ``postgresql/...``: clin-linker's own table (not CDM) recording which
  note supports each derived clinical event, so re-runs replace derived rows (:func:`event_source_ddl`).
- ``duckdb/clin_linker_note_code.sql``, ``postgresql/...``: clin-linker's per-note ranked code lists
  (``clin-linker code --db``; :func:`note_code_ddl`).
- ``duckdb/clin_linker_run.sql``, ``postgresql/...``: clin-linker's run log and the structured fields of each
  mention of a run (``clin-linker run``, read by ``clin-linker report``; :func:`run_ddl`).
- ``tables.py`` (:mod:`clin_linker.schemas.tables`, imported on its own: it needs pyarrow): the pyarrow row schema
  of every table clin-linker writes or stages, the one column list the row builder, the job and the sinks use;
  tests/test_schemas.py checks it against both DDLs.
- ``note.schema.json``: the input note record (DESIGN section 2).
- ``dead_letter.schema.json``: the record written for each input that could not be processed.
"""
from __future__ import annotations

import json
from importlib import resources

__all__ = ["DIALECTS", "SCHEMA_NAMES", "ddl", "event_source_ddl", "json_schema", "note_code_ddl", "run_ddl"]

DIALECTS: tuple[str, ...] = ("duckdb", "postgresql")
SCHEMA_NAMES: tuple[str, ...] = ("note", "dead_letter")

_DDL_FILE = "omop_cdm_v54.sql"
_EVENT_SOURCE_FILE = "clin_linker_event_source.sql"
_NOTE_CODE_FILE = "clin_linker_note_code.sql"
_RUN_FILE = "clin_linker_run.sql"


def _dialect(dialect: str) -> str:
    key = str(dialect).strip().lower()
    if key in ("postgres", "pg"):
        key = "postgresql"
    if key not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; valid dialects: {', '.join(DIALECTS)}")
    return key


def ddl(dialect: str = "duckdb") -> str:
    """Return the OMOP CDM v5.4 DDL script for ``dialect`` ("duckdb" or "postgresql")."""
    return resources.files(__name__).joinpath(_dialect(dialect)).joinpath(_DDL_FILE).read_text(encoding="utf-8")


def event_source_ddl(dialect: str = "duckdb") -> str:
    """DDL of clin-linker's derived-event bookkeeping table (kept apart: it is not an OMOP CDM table)."""
    return (resources.files(__name__).joinpath(_dialect(dialect)).joinpath(_EVENT_SOURCE_FILE)
            .read_text(encoding="utf-8"))


def note_code_ddl(dialect: str = "duckdb") -> str:
    """DDL of clin-linker's per-note code list table (``clin-linker code --db``; not an OMOP CDM table)."""
    return (resources.files(__name__).joinpath(_dialect(dialect)).joinpath(_NOTE_CODE_FILE)
            .read_text(encoding="utf-8"))


def run_ddl(dialect: str = "duckdb") -> str:
    """DDL of clin-linker's run log and mention details (``clin_linker_run``, ``clin_linker_mention``): what a
    review report needs beyond the CDM rows (not OMOP CDM tables)."""
    return resources.files(__name__).joinpath(_dialect(dialect)).joinpath(_RUN_FILE).read_text(encoding="utf-8")


def json_schema(name: str) -> dict:
    """Return the JSON Schema ``name`` ("note" or "dead_letter") as a dict (a fresh copy per call)."""
    key = str(name).strip().lower()
    if key.endswith(".schema.json"):
        key = key[: -len(".schema.json")]
    if key not in SCHEMA_NAMES:
        raise ValueError(f"unknown JSON schema {name!r}; valid names: {', '.join(SCHEMA_NAMES)}")
    text = resources.files(__name__).joinpath(f"{key}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
