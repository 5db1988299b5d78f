"""DuckDB sink: staged Parquet shards -> OMOP tables, idempotently, from ONE process.

Beam workers never open the database (DuckDB allows one writer process per file, DESIGN §5); they write
Parquet shards to a staging directory, and :func:`load_into_duckdb` bulk-inserts them afterwards in one
transaction, replacing the earlier rows of the same notes and system, so a re-run never duplicates rows.
Derived clinical events (opt-in) go through :mod:`.event_sink` in the same transaction.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from ..ontologies.store import ConceptStore
from ..pipeline.omop import concept_rows
from ..schemas import ddl
from .event_sink import event_concept_ids, load_events

NOTE_NLP_COLUMNS = (
    "note_nlp_id", "note_id", "section_concept_id", "snippet", "offset", "lexical_variant",
    "note_nlp_concept_id", "note_nlp_source_concept_id", "nlp_system", "nlp_date", "nlp_datetime",
    "term_exists", "term_temporal", "term_modifiers",
)


def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def load_into_duckdb(database: Path, note_nlp_shards: list[Path], store: ConceptStore,
                     event_shards: list[Path] | None = None,
                     coded_notes: list[tuple[int, str]] | None = None) -> dict[str, int]:
    """Create the CDM tables if needed and insert NOTE_NLP rows + the CONCEPT rows they need.

    NOTE_NLP rows that the same ``nlp_system`` wrote earlier for the same notes are replaced, so a re-run
    never leaves two versions of a note's mentions. With ``event_shards`` (``--derive-clinical-tables``; a
    list, possibly empty), the events derived earlier from ``coded_notes`` ((note_id, nlp_system) pairs) are
    replaced too. Returns rows inserted per table and rows replaced.
    """
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database))
    try:
        con.execute(ddl("duckdb"))
        con.execute("begin transaction")  # all rows of a run land, or none do
        inserted = {"note_nlp": 0, "concept": 0}
        concept_ids: set[int] = set()
        if note_nlp_shards:
            files = [str(p) for p in note_nlp_shards]
            # a re-run replaces what the same system wrote for the same notes: rows stay exactly one
            # set per (note, system) even if a model's output changed in between
            inserted["note_nlp_replaced"] = con.execute(
                "delete from note_nlp where (note_id, nlp_system) in "
                "(select distinct note_id, nlp_system from read_parquet(?))", [files]).fetchone()[0]
            before = con.execute("select count(*) from note_nlp").fetchone()[0]
            con.execute(
                f"insert into note_nlp ({_quoted(NOTE_NLP_COLUMNS)}) "
                f"select {_quoted(NOTE_NLP_COLUMNS)} from read_parquet(?) on conflict do nothing",
                [files],
            )
            inserted["note_nlp"] = con.execute("select count(*) from note_nlp").fetchone()[0] - before
            concept_ids.update(r[0] for r in con.execute(
                "select distinct note_nlp_source_concept_id from read_parquet(?)", [files]).fetchall())
        if event_shards is not None:
            inserted.update(load_events(con, event_shards, coded_notes or []))
            concept_ids.update(event_concept_ids(event_shards))
        rows = concept_rows(concept_ids, store)
        if rows:
            table = pa.Table.from_pylist(rows)
            con.register("new_concepts", table)
            before = con.execute("select count(*) from concept").fetchone()[0]
            con.execute(f"insert into concept ({_quoted(table.column_names)}) "
                        f"select {_quoted(table.column_names)} from new_concepts on conflict do nothing")
            con.unregister("new_concepts")
            inserted["concept"] = con.execute("select count(*) from concept").fetchone()[0] - before
        con.execute("commit")
        return inserted
    finally:
        con.close()
