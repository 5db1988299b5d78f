"""Per-note code lists -> table ``clin_linker_note_code`` (``clin-linker run --code`` through any database sink,
:mod:`.load`, and ``clin-linker code --db`` into a DuckDB file).

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
from .database import Database, columns
from .duckdb_database import DuckDBDatabase

if TYPE_CHECKING:  # type hints only: importing pipeline.coder loads the coder's run time
    from ...pipeline.coder import DocumentCode

_COLUMNS = columns(NOTE_CODE.names)
#: Queries of every concept id the staged lists write (a completed code need not be any mention's: it needs its
#: CONCEPT row when its id is local).
NOTE_CODE_CONCEPT_IDS = ["select concept_id from staged_note_code"]
#: ``coded_notes`` as ``clin-linker code --db`` stages it: it codes notes outside any run, so without nlp_system.
_CODED_NOTE_IDS = pa.schema([("note_id", pa.int64())])


def _row(note_id: int, rank: int, code: DocumentCode, coder: str, store: ConceptStore) -> dict:
    concept = store[code.concept_key]
    return {"note_id": note_id, "coder": coder, "code_rank": rank, "vocabulary_id": concept.vocabulary_id,
            "concept_code": concept.concept_code, "concept_id": concept.omop_concept_id, "score": code.score,
            "accepted": code.accepted, "modifiers": ";".join(code.modifiers) or None,
            "evidence": json.dumps(code.as_json()["evidence"])}


def note_code_rows(note_id: int, codes: Sequence[DocumentCode], coder: str, store: ConceptStore) -> list[dict]:
    """The :data:`NOTE_CODE` rows of one note's ranked list, ``code_rank`` 1 = its first code."""
    return [_row(note_id, rank, code, coder, store) for rank, code in enumerate(codes, start=1)]


def replace_note_codes(db: Database, coder: str) -> dict[str, int]:
    """Replace ``coder``'s lists of every ``coded_notes`` note (with or without codes) by the ``staged_note_code``
    rows, inside the caller's transaction; returns rows inserted and replaced."""
    db.script(note_code_ddl(db.dialect))
    replaced = db.run("clin_linker_note_code", f"delete from clin_linker_note_code where coder = {db.param} "
                                               "and note_id in (select note_id from coded_notes)", [coder])
    inserted = db.run("clin_linker_note_code", f"insert into clin_linker_note_code ({_COLUMNS}) "
                                               f"select {_COLUMNS} from staged_note_code")
    return {"clin_linker_note_code": inserted, "note_codes_replaced": replaced}


def write_note_codes(db_path: Path, rows: Sequence[tuple[int, int, DocumentCode]], coder: str,
                     store: ConceptStore, note_ids: Sequence[int] = ()) -> int:
    """Replace the coded notes' lists (``note_ids`` plus every note in ``rows``) by ``rows``, ``(note_id, rank,
    code)`` triples, in one transaction of its own (``clin-linker code --db``); returns rows written."""
    table = pa.Table.from_pylist([_row(note_id, rank, code, coder, store) for note_id, rank, code in rows],
                                 schema=NOTE_CODE)
    coded = sorted({*note_ids, *(r[0] for r in rows)})
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    try:
        con.execute("begin transaction")
        db = DuckDBDatabase(con)
        db.stage("coded_notes", _CODED_NOTE_IDS, pa.table({"note_id": pa.array(coded, pa.int64())}))
        db.stage("staged_note_code", NOTE_CODE, table)
        written = replace_note_codes(db, coder)
        con.execute("commit")
    finally:
        con.close()
    return written["clin_linker_note_code"]
