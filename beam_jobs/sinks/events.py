"""Derived clinical events (staged Parquet) -> CONDITION_OCCURRENCE / DRUG_EXPOSURE / PROCEDURE_OCCURRENCE in DuckDB.

Why a bookkeeping table: one event row (person + concept + date) can be supported by several notes, and a re-run
must replace what it derived before, like NOTE_NLP's delete + insert, without deleting what other notes still
support or what other ETLs wrote. ``clin_linker_event_source`` records (event, note, nlp_system); a re-run of a
note drops its records first, deletes the events left with no support, then inserts. Runs inside the caller's
transaction (:meth:`.duckdb.DuckDBSink.write`).
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from ...schemas import event_source_ddl
from ...schemas.tables import EVENT_SOURCE, EVENT_TABLES, EventTable, duckdb_type


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """One value; the result is read to its end (DuckDB refuses ``register`` while a result is pending)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _check_column_types(con: duckdb.DuckDBPyConnection) -> None:
    """Tables created by an older DDL keep INTEGER ids, which cannot hold the 63-bit event ids: say so before
    writing rather than fail half-way with a conversion error."""
    for table in EVENT_TABLES:
        for column in table.schema:
            data_type = scalar(con, "select data_type from information_schema.columns "
                                     "where table_name = ? and column_name = ?", [table.name, column.name])
            wanted = duckdb_type(column.type)
            if data_type is not None and data_type != wanted:
                raise ValueError(
                    f"{table.name}.{column.name} is {data_type} in this database; clin-linker writes {wanted} there "
                    f"(schemas/duckdb/omop_cdm_v54.sql; derived event ids are 63-bit): write to a new file or alter "
                    f"the column to {wanted}")


def _insert_sql(table: EventTable) -> str:
    # one row per event id: mentions of the same person + concept + date (in any note) collapse; the smallest
    # source code is kept so the choice does not depend on batching
    return (f"insert into {table.name} ({', '.join(table.schema.names)}) select {', '.join(table.staged)} from "
            "(select distinct on (event_id) * from read_parquet(?) where event_table = ? "
            "order by event_id, source_value, source_concept_id) on conflict do nothing")


def load_events(con: duckdb.DuckDBPyConnection, event_shards: list[Path],
                coded_notes: list[tuple[int, str]]) -> dict[str, int]:
    """Replace the events derived earlier from ``coded_notes`` ((note_id, nlp_system) pairs) with the staged ones.

    Returns rows inserted per table and ``events_replaced``: earlier events deleted because no note supports them
    any more (on a plain re-run they are inserted again, hence "replaced").
    """
    con.execute(event_source_ddl("duckdb"))
    _check_column_types(con)
    counts = {table.name: 0 for table in EVENT_TABLES}
    run = pa.table({"note_id": pa.array([n for n, _ in coded_notes], pa.int64()),
                    "nlp_system": pa.array([s for _, s in coded_notes], pa.string())})
    con.register("run_notes", run)
    try:
        con.execute("create temp table touched as select distinct event_table, event_id from clin_linker_event_source "
                    "where (note_id, nlp_system) in (select note_id, nlp_system from run_notes)")
        con.execute("delete from clin_linker_event_source "
                    "where (note_id, nlp_system) in (select note_id, nlp_system from run_notes)")
        removed = 0
        for table in EVENT_TABLES:
            removed += scalar(
                con, f"delete from {table.name} where {table.column('event_id')} in (select event_id from touched t "
                "where t.event_table = ? and not exists (select 1 from clin_linker_event_source s "
                "where s.event_table = t.event_table and s.event_id = t.event_id))", [table.name])
        counts["events_replaced"] = removed
        scalar(con, "drop table touched")
    finally:
        con.unregister("run_notes")
    if event_shards:
        files = [str(p) for p in event_shards]
        for table in EVENT_TABLES:
            before = scalar(con, f"select count(*) from {table.name}")
            scalar(con, _insert_sql(table), [files, table.name])
            counts[table.name] = scalar(con, f"select count(*) from {table.name}") - before
        columns = ", ".join(EVENT_SOURCE.names)
        scalar(con, f"insert into clin_linker_event_source ({columns}) select distinct {columns} "
                     "from read_parquet(?) on conflict do nothing", [files])
    return counts


def event_concept_ids(con: duckdb.DuckDBPyConnection, event_shards: list[Path]) -> list[int]:
    """Every concept id the staged events write (source ids may be local: they need CONCEPT rows)."""
    if not event_shards:
        return []
    rows = con.execute("select distinct source_concept_id from read_parquet(?) union "
                       "select distinct concept_id from read_parquet(?)",
                       [[str(p) for p in event_shards]] * 2).fetchall()
    return [r[0] for r in rows]
