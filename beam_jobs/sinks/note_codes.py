"""Writes per-note code lists to table ``clin_linker_note_code`` of a DuckDB database (``clin-linker code --db``).

Idempotent like the NOTE_NLP sink: a note's rows of the same coder are deleted, then inserted, in one transaction,
so re-running a note (or a retry) leaves exactly one list per (note, coder).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from ...ontologies.store import ConceptStore
from ...pipeline.coder import DocumentCode
from ...schemas import note_code_ddl
from ...schemas.tables import NOTE_CODE


def note_code_rows(rows: Sequence[tuple[int, int, DocumentCode]], coder: str, store: ConceptStore) -> pa.Table:
    """The :data:`NOTE_CODE` rows of ``(note_id, rank, code)`` triples."""
    records = []
    for note_id, rank, code in rows:
        concept = store[code.concept_key]
        records.append({"note_id": note_id, "coder": coder, "code_rank": rank, "vocabulary_id": concept.vocabulary_id,
                        "concept_code": concept.concept_code, "concept_id": concept.omop_concept_id,
                        "score": code.score, "accepted": code.accepted, "modifiers": ";".join(code.modifiers) or None,
                        "evidence": json.dumps(code.as_json()["evidence"])})
    return pa.Table.from_pylist(records, schema=NOTE_CODE)


def write_note_codes(db_path: Path, rows: Sequence[tuple[int, int, DocumentCode]], coder: str,
                     store: ConceptStore, note_ids: Sequence[int] = ()) -> int:
    """Replace the coded notes' lists (``note_ids`` plus every note in ``rows``) by ``rows``; returns rows written."""
    table = note_code_rows(rows, coder, store)
    notes = sorted({*note_ids, *(r[0] for r in rows)})
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    try:
        con.execute(note_code_ddl("duckdb"))
        con.execute("BEGIN TRANSACTION")
        if notes:
            con.execute("DELETE FROM clin_linker_note_code WHERE coder = ? AND note_id IN (SELECT unnest(?))",
                        [coder, notes])
        con.register("incoming", table)
        con.execute(f"INSERT INTO clin_linker_note_code SELECT {', '.join(NOTE_CODE.names)} FROM incoming")
        con.execute("COMMIT")
    finally:
        con.close()
    return table.num_rows
