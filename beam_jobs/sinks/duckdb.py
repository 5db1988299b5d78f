"""DuckDB sink: a run's staged shards -> OMOP tables in one DuckDB file, idempotently, from ONE process.

Beam workers never open the database (DuckDB allows one writer process per file, DESIGN §5); they stage Parquet
shards, and :meth:`DuckDBSink.write` bulk-inserts them afterwards in one transaction: NOTE_NLP (only its CDM
columns), the CONCEPT rows the written ids need (local ids and 0), with derived events the event tables and
their bookkeeping table (:mod:`.duckdb_events`), with document coding the per-note code lists
(:mod:`.note_codes`), and the run's log row with its mentions' details (:mod:`.duckdb_run`). Earlier rows of the
same notes and system (or coder) are replaced, so a re-run never duplicates rows.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from ...ontologies.store import ConceptStore
from ...pipeline.omop import concept_rows
from ...schemas import ddl
from ...schemas.tables import CONCEPT, NOTE_NLP
from . import StagedRun
from .duckdb_events import event_concept_ids, load_events, scalar
from .duckdb_run import load_run, read_note_states
from .note_codes import load_note_codes, note_code_concept_ids


def quoted(columns: list[str]) -> str:
    """Column names for SQL, each double-quoted ("offset" is a reserved word)."""
    return ", ".join(f'"{c}"' for c in columns)


class DuckDBSink:
    """Writes runs into the DuckDB file ``database`` (created with the CDM tables if needed); ``store`` gives
    the CONCEPT rows of the local concept ids the run writes."""

    def __init__(self, database: Path, store: ConceptStore):
        self.database = Path(database)
        self.store = store

    def write(self, run: StagedRun) -> dict[str, int]:
        """Insert the run's NOTE_NLP rows + the CONCEPT rows they need, and its derived events if any.

        NOTE_NLP rows that the same ``nlp_system`` wrote earlier for the same notes are replaced, so a re-run
        never leaves two versions of a note's mentions. With ``run.events`` (a list, possibly empty), the events
        derived earlier from ``run.coded_notes`` are replaced too, and with ``run.note_codes`` the coder's earlier
        lists of those notes; with ``run.run`` the run is logged and its mentions' details replace the earlier ones.
        Returns rows inserted per table and rows replaced (``note_nlp_replaced``, ``events_replaced``,
        ``note_codes_replaced``, ``mentions_replaced``).
        """
        self.database.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.database))
        try:
            con.execute(ddl("duckdb"))
            con.execute("begin transaction")  # all rows of a run land, or none do
            inserted = {"note_nlp": 0, "concept": 0}
            concept_ids: set[int] = set()
            inserted.update(_load_note_nlp(con, [str(p) for p in run.note_nlp], list(run.coded_notes)))
            if run.note_nlp:
                concept_ids.update(r[0] for r in con.execute(
                    "select distinct note_nlp_source_concept_id from read_parquet(?)",
                    [[str(p) for p in run.note_nlp]]).fetchall())
            if run.events is not None:
                inserted.update(load_events(con, list(run.events), list(run.coded_notes)))
                concept_ids.update(event_concept_ids(con, list(run.events)))
            if run.note_codes is not None:
                inserted.update(load_note_codes(con, list(run.note_codes.shards), run.note_codes.coder,
                                                [note_id for note_id, _ in run.coded_notes]))
                concept_ids.update(note_code_concept_ids(con, list(run.note_codes.shards)))
            if run.run is not None:
                inserted.update(load_run(con, run.run, list(run.note_nlp), list(run.coded_notes), run.note_states))
            inserted["concept"] = _load_concepts(con, concept_rows(concept_ids, self.store))
            con.execute("commit")
            return inserted
        finally:
            con.close()


    def note_states(self, nlp_system: str) -> dict[int, str]:
        """note_id -> text SHA-256 of the notes ``nlp_system`` last coded here (read-only; empty before any run)."""
        if not self.database.exists():
            return {}
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return read_note_states(con, nlp_system)
        finally:
            con.close()


def _load_note_nlp(con: duckdb.DuckDBPyConnection, files: list[str],
                   coded_notes: list[tuple[int, str]]) -> dict[str, int]:
    """Replace the NOTE_NLP rows of every coded note (by note and system) with the staged ones.

    The rows to delete are those of every note the run coded, not only of the notes that still have mentions: a
    note re-run into zero mentions must lose its old rows too.
    """
    coded = pa.table({"note_id": pa.array([n for n, _ in coded_notes], pa.int64()),
                      "nlp_system": pa.array([s for _, s in coded_notes], pa.string())})
    con.register("coded_notes", coded)
    try:
        replaced = scalar(con, "delete from note_nlp where (note_id, nlp_system) in "
                               "(select note_id, nlp_system from coded_notes)")
    finally:
        con.unregister("coded_notes")
    if not files:
        return {"note_nlp": 0, "note_nlp_replaced": replaced}
    before = scalar(con, "select count(*) from note_nlp")
    columns = quoted(NOTE_NLP.names)  # the staged rows carry more columns; NOTE_NLP gets its own only
    scalar(con, f"insert into note_nlp ({columns}) select {columns} from read_parquet(?) on conflict do nothing",
           [files])
    return {"note_nlp": scalar(con, "select count(*) from note_nlp") - before, "note_nlp_replaced": replaced}


def _load_concepts(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> int:
    if not rows:
        return 0
    con.register("new_concepts", pa.Table.from_pylist(rows, schema=CONCEPT))
    try:
        before = scalar(con, "select count(*) from concept")
        columns = quoted(CONCEPT.names)
        scalar(con, f"insert into concept ({columns}) select {columns} from new_concepts on conflict do nothing")
        return scalar(con, "select count(*) from concept") - before
    finally:
        con.unregister("new_concepts")
