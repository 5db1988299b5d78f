"""Derived clinical events (staged relation ``staged_event``) -> CONDITION_OCCURRENCE / DRUG_EXPOSURE /
PROCEDURE_OCCURRENCE, in any database sink (:mod:`.load`).

Why a bookkeeping table: one event row (person + concept + date) can be supported by several notes, and a re-run
must replace what it derived before, like NOTE_NLP's delete + insert, without deleting what other notes still
support or what other ETLs wrote. ``clin_linker_event_source`` records (event, note, nlp_system); a re-run of a
note drops its records first, deletes the events left with no support, then inserts. Runs inside the caller's
transaction.
"""
from __future__ import annotations

from ...schemas import event_source_ddl
from ...schemas.tables import EVENT_SOURCE, EVENT_TABLES, EventTable
from .database import Database, columns

#: Queries of every concept id the staged events write (source ids may be local: they need CONCEPT rows).
EVENT_CONCEPT_IDS = ["select source_concept_id from staged_event", "select concept_id from staged_event"]


def _check_column_types(db: Database) -> None:
    """Tables created by an older DDL (or the official OHDSI one) keep INTEGER ids, which cannot hold the 63-bit
    event ids: say so before writing rather than fail half-way with a conversion error."""
    for table in EVENT_TABLES:
        for column in table.schema:
            found = db.rows("select data_type from information_schema.columns where table_schema = current_schema() "
                            f"and table_name = {db.param} and column_name = {db.param}", [table.name, column.name])
            wanted = db.sql_type(column.type)
            if found and found[0][0] != wanted:
                raise ValueError(
                    f"{table.name}.{column.name} is {found[0][0]} in this database; clin-linker writes {wanted} there "
                    f"(schemas/{db.dialect}/omop_cdm_v54.sql; derived event ids are 63-bit): write to a new "
                    f"database or alter the column to {wanted}")


def _insert_sql(table: EventTable, param: str) -> str:
    # one row per event id: mentions of the same person + concept + date (in any note) collapse; the smallest
    # source code is kept so the choice does not depend on batching
    return (f"insert into {table.name} ({columns(table.schema.names)}) select {columns(table.staged)} from "
            f"(select distinct on (event_id) * from staged_event where event_table = {param} "
            "order by event_id, source_value, source_concept_id) as one_per_event on conflict do nothing")


def replace_events(db: Database) -> dict[str, int]:
    """Replace the events derived earlier from the run's ``coded_notes`` with the ``staged_event`` rows.

    Returns rows inserted per table and ``events_replaced``: earlier events deleted because no note supports them
    any more (on a plain re-run they are inserted again, hence "replaced").
    """
    db.script(event_source_ddl(db.dialect))
    _check_column_types(db)
    counts = {table.name: 0 for table in EVENT_TABLES}
    db.run("clin_linker_event_source",
           "create temp table touched as select distinct event_table, event_id from clin_linker_event_source "
           "where (note_id, nlp_system) in (select note_id, nlp_system from coded_notes)")
    db.run("clin_linker_event_source", "delete from clin_linker_event_source "
                                       "where (note_id, nlp_system) in (select note_id, nlp_system from coded_notes)")
    removed = 0
    for table in EVENT_TABLES:
        removed += db.run(
            table.name, f"delete from {table.name} where {table.column('event_id')} in (select event_id from touched t "
            f"where t.event_table = {db.param} and not exists (select 1 from clin_linker_event_source s "
            "where s.event_table = t.event_table and s.event_id = t.event_id))", [table.name])
    counts["events_replaced"] = removed
    db.run("clin_linker_event_source", "drop table touched")
    for table in EVENT_TABLES:
        counts[table.name] = db.run(table.name, _insert_sql(table, db.param), [table.name])
    db.run("clin_linker_event_source", f"insert into clin_linker_event_source ({columns(EVENT_SOURCE.names)}) "
                                       f"select distinct {columns(EVENT_SOURCE.names)} from staged_event "
                                       "on conflict do nothing")
    return counts
