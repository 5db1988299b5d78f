"""A run's own record and its mentions' details -> ``clin_linker_run`` + ``clin_linker_mention`` in DuckDB.

Why: NOTE_NLP keeps a mention's flags, code and score only as ``term_modifiers`` text, and nothing of the run as a
whole (dead letters, time, inputs, the NIL threshold). A review (``clin-linker report``) reads these two tables
instead of parsing text or keeping state of its own. Like NOTE_NLP, a re-run of a note replaces its mention rows of
the same ``nlp_system``; the run log only grows. ``clin_linker_note_state`` keeps each coded note's text hash for
``--incremental`` runs. Runs inside the caller's transaction
(:meth:`.duckdb.DuckDBSink.write`). Neither table holds note text.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from ...schemas import run_ddl
from ...schemas.tables import MENTION, NOTE_STATE, RUN
from .duckdb_events import scalar

_MENTION_FROM_STAGED = [name for name in MENTION.names if name != "run_id"]


def load_run(con: duckdb.DuckDBPyConnection, run: Mapping[str, object], shards: Sequence[Path],
             coded_notes: Sequence[tuple[int, str]], note_states: Sequence[tuple[int, str, str]] = ()) -> dict[str, int]:
    """Insert the run's row (columns of :data:`RUN`), replace the mention rows of every coded note
    (``(note_id, nlp_system)`` pairs) with the staged NOTE_NLP shards' structured columns and the notes' text hashes
    (``note_states``, :data:`NOTE_STATE`); returns rows inserted (``clin_linker_run``, ``clin_linker_mention``,
    ``clin_linker_note_state``) and ``mentions_replaced``."""
    con.execute(run_ddl("duckdb"))
    con.register("new_run", pa.Table.from_pylist([dict(run)], schema=RUN))
    try:
        scalar(con, f"insert into clin_linker_run ({', '.join(RUN.names)}) select {', '.join(RUN.names)} from new_run")
    finally:
        con.unregister("new_run")
    con.register("coded_notes", pa.table({"note_id": pa.array([n for n, _ in coded_notes], pa.int64()),
                                          "nlp_system": pa.array([s for _, s in coded_notes], pa.string())}))
    try:
        replaced = scalar(con, "delete from clin_linker_mention where (note_id, nlp_system) in "
                               "(select note_id, nlp_system from coded_notes)")
    finally:
        con.unregister("coded_notes")
    inserted = 0
    if shards:
        inserted = scalar(con, f"insert into clin_linker_mention (run_id, {', '.join(_MENTION_FROM_STAGED)}) "
                               f"select ?, {', '.join(_MENTION_FROM_STAGED)} from read_parquet(?)",
                          [run["run_id"], [str(p) for p in shards]])
    states = 0
    if note_states:
        con.register("new_states", pa.Table.from_pylist(
            [{"note_id": n, "nlp_system": system, "text_sha256": digest, "run_id": run["run_id"]}
             for n, system, digest in note_states], schema=NOTE_STATE))
        try:
            states = scalar(con, f"insert or replace into clin_linker_note_state ({', '.join(NOTE_STATE.names)}) "
                                 f"select {', '.join(NOTE_STATE.names)} from new_states")
        finally:
            con.unregister("new_states")
    return {"clin_linker_run": 1, "clin_linker_mention": inserted, "mentions_replaced": replaced,
            "clin_linker_note_state": states}


def read_note_states(con: duckdb.DuckDBPyConnection, nlp_system: str) -> dict[int, str]:
    """note_id -> text_sha256 that ``nlp_system`` last coded (empty before the table exists)."""
    exists = scalar(con, "select count(*) from information_schema.tables where table_name = 'clin_linker_note_state'")
    if not exists:
        return {}
    return dict(con.execute("select note_id, text_sha256 from clin_linker_note_state where nlp_system = ?",
                            [nlp_system]).fetchall())
