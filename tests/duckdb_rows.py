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
