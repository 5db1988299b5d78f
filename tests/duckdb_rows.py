"""Reading a run's output database in tests: one read-only connection per query, closed at once (DuckDB allows one
writer per file, and a test may run the job again into the same file)."""
from __future__ import annotations

from pathlib import Path

import duckdb


def query(db: str | Path, sql: str, params: list | None = None) -> list[tuple]:
    """All rows of ``sql`` on the database file ``db``."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def content_hash(db: str | Path, table: str, exclude: tuple[str, ...] = ("nlp_date", "nlp_datetime")) -> str:
    """SHA-256 of a table's rows (every column but ``exclude``, rows sorted): equal hashes = byte-identical content.

    NOTE_NLP's nlp_date/nlp_datetime say when a run happened, not what it found, so they are left out by default.
    """
    import hashlib

    columns = [name for (name,) in query(db, "select column_name from information_schema.columns "
                                             "where table_name = ? order by ordinal_position", [table])
               if name not in exclude]
    rows = query(db, f"select {', '.join(repr_column(c) for c in columns)} from {table} order by all")
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def repr_column(name: str) -> str:
    return f'"{name}"'
