"""DuckDB sink: a run's staged shards -> OMOP tables in one DuckDB file, idempotently, from ONE process.

Beam workers never open the database (DuckDB allows one writer process per file, DESIGN §5); they stage Parquet
shards, and :meth:`DuckDBSink.write` bulk-inserts them afterwards in one transaction, with the statements every
database sink shares (:mod:`.load`): NOTE_NLP (only its CDM columns), the CONCEPT rows the written ids need (local
ids and 0), with derived events the event tables and their bookkeeping table (:mod:`.events`), with document coding
the per-note code lists (:mod:`.note_codes`), and the run's log row with its mentions' details (:mod:`.run_log`).
Earlier rows of the same notes and system (or coder) are replaced, so a re-run never duplicates rows.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from ...ontologies.store import ConceptStore
from .staged import StagedRun
from .duckdb_database import DuckDBDatabase
from .load import load
from .run_log import read_note_states


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
            con.execute("begin transaction")  # all rows of a run land, or none do
            inserted = load(DuckDBDatabase(con), run, self.store)
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
            return read_note_states(DuckDBDatabase(con), nlp_system)
        finally:
            con.close()
