"""A run's staged rows -> the output's tables: the statements every database sink (DuckDB, PostgreSQL) runs.

Why one copy: what a re-run replaces (a note's NOTE_NLP rows by note and system, the events no note supports any
more, a coder's lists, a note's mention rows and text hash) is the sink contract (:mod:`clin_linker.beam_jobs.sinks`);
two copies of it would drift. A sink only opens its transaction and provides a :class:`Database`: the
staged relations (DuckDB: Arrow tables and Parquet scans registered on the connection; PostgreSQL: TEMP tables
filled by COPY) and a way to run one statement. The statements use SQL both dialects accept, reading only those
relations; scalar values travel as parameters, never formatted into the SQL.
"""
from __future__ import annotations

import pyarrow as pa

from ...ontologies.store import ConceptStore
from ...pipeline.omop import concept_rows
from ...schemas import ddl
from ...schemas.tables import CONCEPT, NOTE_CODE, NOTE_NLP, STAGED_EVENT, STAGED_NOTE_NLP
from .staged import StagedRun
from .database import Database, columns
from .events import EVENT_CONCEPT_IDS, replace_events
from .note_codes import NOTE_CODE_CONCEPT_IDS, replace_note_codes
from .run_log import log_run

#: Relation ``coded_notes``: every note the run coded, with or without mentions (what a re-run replaces).
CODED_NOTES = pa.schema([("note_id", pa.int64()), ("nlp_system", pa.string())])


def load(db: Database, run: StagedRun, store: ConceptStore) -> dict[str, int]:
    """Create the tables if needed and write ``run`` inside the caller's transaction (the contract of
    :class:`.Sink`): NOTE_NLP, then the derived events, code lists and run log the run carries, then the CONCEPT rows
    the written ids need (``store`` has them for local ids). Returns rows inserted per table and ``*_replaced``."""
    db.script(ddl(db.dialect))
    db.stage("coded_notes", CODED_NOTES, pa.table({"note_id": pa.array([n for n, _ in run.coded_notes], pa.int64()),
                                                   "nlp_system": pa.array([s for _, s in run.coded_notes],
                                                                          pa.string())}, schema=CODED_NOTES))
    db.stage("staged_note_nlp", STAGED_NOTE_NLP, run.note_nlp)
    counts = _replace_note_nlp(db)
    concept_ids = ["select note_nlp_source_concept_id from staged_note_nlp"]
    if run.events is not None:
        db.stage("staged_event", STAGED_EVENT, run.events)
        counts.update(replace_events(db))
        concept_ids += EVENT_CONCEPT_IDS
    if run.note_codes is not None:
        db.stage("staged_note_code", NOTE_CODE, run.note_codes.shards)
        counts.update(replace_note_codes(db, run.note_codes.coder))
        concept_ids += NOTE_CODE_CONCEPT_IDS
    if run.run is not None:
        counts.update(log_run(db, run.run, run.note_states))
    ids = [row[0] for row in db.rows(" union ".join(concept_ids))]
    db.stage("new_concepts", CONCEPT, pa.Table.from_pylist(concept_rows(ids, store), schema=CONCEPT))
    counts["concept"] = db.run("concept", f"insert into concept ({columns(CONCEPT.names)}) "
                                          f"select {columns(CONCEPT.names)} from new_concepts on conflict do nothing")
    return counts


def _replace_note_nlp(db: Database) -> dict[str, int]:
    """Replace the NOTE_NLP rows of every coded note (by note and system) with the staged ones.

    The rows to delete are those of every note the run coded, not only of the notes that still have mentions: a
    note re-run into zero mentions must lose its old rows too. Only NOTE_NLP's own columns are written (the staged
    rows carry the mention's details too: :mod:`.run_log` writes those).
    """
    replaced = db.run("note_nlp", "delete from note_nlp where (note_id, nlp_system) in "
                                  "(select note_id, nlp_system from coded_notes)")
    inserted = db.run("note_nlp", f"insert into note_nlp ({columns(NOTE_NLP.names)}) "
                                  f"select {columns(NOTE_NLP.names)} from staged_note_nlp on conflict do nothing")
    return {"note_nlp": inserted, "note_nlp_replaced": replaced, "concept": 0}
