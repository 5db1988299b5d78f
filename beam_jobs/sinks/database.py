"""What the shared load statements (:mod:`.load`) need of an output: one open transaction, its staged relations and
a way to run one statement. :mod:`.duckdb_database` and :mod:`.postgresql` implement it."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa


class Database(Protocol):
    """One open transaction on an output, as the shared statements need it."""

    #: "duckdb" or "postgresql": which DDL files (``clin_linker.schemas``) create its tables.
    dialect: str
    #: The driver's placeholder for one parameter ("?" or "%s").
    param: str

    def script(self, sql: str) -> None:
        """Run a DDL script (several statements, no parameters)."""
        ...

    def stage(self, name: str, schema: pa.Schema, rows: Sequence[Path] | pa.Table) -> None:
        """Make relation ``name`` (columns of ``schema``) hold ``rows``: Parquet shards of that schema, or a table."""
        ...

    def run(self, table: str, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement that loads ``table`` (named in errors); return the rows it inserted or deleted."""
        ...

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """All rows of a query."""
        ...

    def sql_type(self, data_type: pa.DataType) -> str:
        """The column type holding ``data_type``, as the database's information_schema spells it."""
        ...


def columns(names: Sequence[str]) -> str:
    """Column names for SQL, each double-quoted ("offset" is a reserved word)."""
    return ", ".join(f'"{c}"' for c in names)
