"""A DuckDB connection as the shared load statements (:mod:`.load`) need it (:class:`.database.Database`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from ...schemas.tables import duckdb_type
from .database import columns


class DuckDBDatabase:
    """Staged relations are registered on the connection, never created in the file: Arrow tables as they are,
    Parquet shards as a lazy scan (a run's shards are not read into memory)."""

    dialect = "duckdb"
    param = "?"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def script(self, sql: str) -> None:
        self.con.execute(sql)

    def stage(self, name: str, schema: pa.Schema, rows: Sequence[Path] | pa.Table) -> None:
        if isinstance(rows, pa.Table):
            self.con.register(name, rows)
        elif rows:
            self.con.register(name, self.con.read_parquet([str(p) for p in rows]).select(columns(schema.names)))
        else:  # read_parquet refuses an empty list
            self.con.register(name, schema.empty_table())

    def run(self, table: str, sql: str, params: Sequence[object] = ()) -> int:
        # a DuckDB statement returns its row count as a result, read to its end: DuckDB refuses ``register`` while
        # a result is pending
        result = self.con.execute(sql, list(params)).fetchall()
        return result[0][0] if result else 0

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def sql_type(self, data_type: pa.DataType) -> str:
        return duckdb_type(data_type)
