"""Per-note code lists -> table ``clin_linker_note_code`` of a DuckDB database (``clin-linker run --code`` through
:class:`.duckdb.DuckDBSink`, and ``clin-linker code --db``).

Idempotent like the NOTE_NLP sink: the rows a coder wrote for the coded notes are deleted, then the new ones
inserted, in the caller's transaction, so re-running a note (or a retry) leaves exactly one list per (note, coder),
and a note re-coded into no codes loses its old list. Other coders' lists of the same notes stay: comparing two
coders on the same notes is what the ``coder`` column is for.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from ...ontologies.store import ConceptStore
from ...schemas import note_code_ddl
from ...schemas.tables import NOTE_CODE
from .duckdb_events import scalar

if TYPE_CHECKING:  # type hints only: importing pipeline.coder loads the coder's run time
    from ...pipeline.coder import DocumentCode

_COLUMNS = ", ".join(NOTE_CODE.names)


def _row(note_id: int, rank: int, code: DocumentCode, coder: str, store: ConceptStore) -> dict:
    concept = store[code.concept_key]
    return {"note_id": note_id, "coder": coder, "code_rank": rank, "vocabulary_id": concept.vocabulary_id,
            "concept_code": concept.concept_code, "concept_id": concept.omop_concept_id, "score": code.score,
            "accepted": code.accepted, "modifiers": ";".join(code.modifiers) or None,
            "evidence": json.dumps(code.as_json()["evidence"])}


def note_code_rows(note_id: int, codes: Sequence[DocumentCode], coder: str, store: ConceptStore) -> list[dict]:
    """The :data:`NOTE_CODE` rows of one note's ranked list, ``code_rank`` 1 = its first code."""
    return [_row(note_id, rank, code, coder, store) for rank, code in enumerate(codes, start=1)]


def _replace(con: duckdb.DuckDBPyConnection, coder: str, note_ids: Sequence[int], source: str | None,
             params: list) -> dict[str, int]:
    """Delete ``coder``'s rows of ``note_ids``, insert the NOTE_CODE columns of ``source`` (a SQL relation; None:
    nothing to insert)."""
    con.execute(note_code_ddl("duckdb"))
    con.register("coded_note_ids", pa.table({"note_id": pa.array(sorted(set(note_ids)), pa.int64())}))
    try:
        replaced = scalar(con, "delete from clin_linker_note_code where coder = ? "
                               "and note_id in (select note_id from coded_note_ids)", [coder])
    finally:
        con.unregister("coded_note_ids")
    inserted = 0 if source is None else scalar(
        con, f"insert into clin_linker_note_code ({_COLUMNS}) select {_COLUMNS} from {source}", params)
    return {"clin_linker_note_code": inserted, "note_codes_replaced": replaced}


def load_note_codes(con: duckdb.DuckDBPyConnection, shards: Sequence[Path], coder: str,
                    note_ids: Sequence[int]) -> dict[str, int]:
    """Replace ``coder``'s lists of every coded note (``note_ids``, with or without codes) by the staged rows
    (Parquet shards of :data:`NOTE_CODE`), inside the caller's transaction; returns rows inserted and replaced."""
    return _replace(con, coder, note_ids, "read_parquet(?)" if shards else None, [[str(p) for p in shards]])


def note_code_concept_ids(con: duckdb.DuckDBPyConnection, shards: Sequence[Path]) -> list[int]:
    """Every concept id the staged lists write (a completed code need not be any mention's: it needs its CONCEPT
    row when its id is local)."""
    if not shards:
        return []
    return [r[0] for r in con.execute("select distinct concept_id from read_parquet(?)",
                                      [[str(p) for p in shards]]).fetchall()]


def write_note_codes(db_path: Path, rows: Sequence[tuple[int, int, DocumentCode]], coder: str,
                     store: ConceptStore, note_ids: Sequence[int] = ()) -> int:
    """Replace the coded notes' lists (``note_ids`` plus every note in ``rows``) by ``rows``, ``(note_id, rank,
    code)`` triples, in one transaction of its own (``clin-linker code --db``); returns rows written."""
    table = pa.Table.from_pylist([_row(note_id, rank, code, coder, store) for note_id, rank, code in rows],
                                 schema=NOTE_CODE)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    try:
        con.execute("begin transaction")
        con.register("incoming", table)
        written = _replace(con, coder, [*note_ids, *(r[0] for r in rows)], "incoming", [])
        con.unregister("incoming")
        con.execute("commit")
    finally:
        con.close()
    return written["clin_linker_note_code"]
