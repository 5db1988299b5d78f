"""PostgreSQL sink: a run's staged shards -> OMOP tables in one PostgreSQL schema, in ONE transaction.

Why COPY into TEMP tables and then ``INSERT ... SELECT``: COPY is PostgreSQL's bulk path (rows stream, no statement
per row), and once the rows sit in staging tables the load runs exactly the statements the DuckDB sink runs
(:mod:`.load`): delete what the re-coded notes had, insert with ``ON CONFLICT`` on the primary keys, so a re-run
replaces and never duplicates. The TEMP tables are dropped at commit. Everything (creating the schema and tables,
staging, deleting, inserting) is one transaction: a failure anywhere, the connection dying included, leaves the
database as it was, and :class:`~.staged.SinkError` names the database (without its password) and the table being
loaded.

Names are checked, never trusted: the schema must be a plain identifier and is quoted; values travel only as
parameters or COPY data.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from ...ontologies.store import ConceptStore
from ...schemas.tables import postgresql_type
from ..note_tables import redact_url
from .load import load
from .run_log import read_note_states
from .staged import SinkError, StagedRun

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Rows per Arrow batch read from a shard while copying (bounds memory, not speed).
_COPY_BATCH_ROWS = 10_000


def _identifier(name: str, what: str) -> sql.Identifier:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a plain SQL identifier: give a letter or _ followed by letters, "
                         "digits or _ (at most 63 characters), e.g. --schema cdm")
    return sql.Identifier(name)


class _Transaction:
    """One open transaction as :mod:`.load` needs it (:class:`.database.Database`); remembers which table it is
    loading, for the error message when a statement fails."""

    dialect = "postgresql"
    param = "%s"

    def __init__(self, con: psycopg.Connection):
        self.con = con
        #: What the statement running now loads; None once everything is loaded (then only the commit is left).
        self.loading: str | None = "the CDM tables (creating them)"

    def script(self, script: str) -> None:
        self.con.execute(script)  # no parameters: psycopg sends it as one simple query, several statements allowed

    def stage(self, name: str, schema: pa.Schema, rows: Sequence[Path] | pa.Table) -> None:
        self.loading = f"{name} (staging the run's rows)"
        table = _identifier(name, "staging table")
        names = sql.SQL(", ").join(sql.Identifier(n) for n in schema.names)
        self.con.execute(sql.SQL("create temp table {} ({}) on commit drop").format(table, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(postgresql_type(f.type))) for f in schema)))
        with self.con.cursor() as cursor, cursor.copy(sql.SQL("copy {} ({}) from stdin").format(table, names)) as copy:
            for batch in _batches(rows, schema):
                for row in zip(*(column.to_pylist() for column in batch.columns)):
                    copy.write_row(row)

    def run(self, table: str, statement: str, params: Sequence[object] = ()) -> int:
        self.loading = table
        return max(self.con.execute(statement, list(params) or None).rowcount, 0)

    def rows(self, statement: str, params: Sequence[object] = ()) -> list[tuple]:
        return self.con.execute(statement, list(params) or None).fetchall()

    def sql_type(self, data_type: pa.DataType) -> str:
        return postgresql_type(data_type)


def _batches(rows: Sequence[Path] | pa.Table, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if isinstance(rows, pa.Table):
        yield from rows.select(schema.names).to_batches(_COPY_BATCH_ROWS)
        return
    for path in rows:
        yield from pq.ParquetFile(path).iter_batches(_COPY_BATCH_ROWS, columns=schema.names)


class PostgreSQLSink:
    """Writes runs into schema ``schema`` of the PostgreSQL database at ``url`` (schema and tables created when
    missing); ``store`` gives the CONCEPT rows of the local concept ids the run writes."""

    def __init__(self, url: str, store: ConceptStore, schema: str = "public"):
        self.url = url
        self.store = store
        self.schema = schema
        self._schema = _identifier(schema, "--schema")

    def describe(self) -> str:
        """The output for messages and logs: URL without its password, and the schema."""
        return f"PostgreSQL {redact_url(self.url)} (schema {self.schema})"

    def write(self, run: StagedRun) -> dict[str, int]:
        """Same contract and counts as :meth:`.duckdb.DuckDBSink.write`, in one transaction: all of the run lands
        or, whatever fails, nothing does (:class:`~.staged.SinkError` then says where it failed)."""
        transaction: _Transaction | None = None
        try:
            with psycopg.connect(self.url) as con:  # commits when the block ends, rolls back when it raises
                transaction = _Transaction(con)
                con.execute("set local client_min_messages = warning")  # no NOTICE per existing table
                self._enter_schema(con, create=True)
                counts = load(transaction, run, self.store)
                transaction.loading = None
            return counts
        except psycopg.Error as e:
            if transaction is None:
                raise SinkError(f"could not connect to {self.describe()}: {e}. Nothing was written; re-running the "
                                "same command is safe.") from e
            if transaction.loading is None:
                raise SinkError(f"committing the run to {self.describe()} failed: {e}. Re-running the same command is "
                                "safe: it replaces the run's rows whether or not this commit landed.") from e
            raise SinkError(f"writing to {self.describe()} failed while loading {transaction.loading}: {e}. The "
                            "transaction was rolled back, nothing of this run was written; re-running the same "
                            "command is safe.") from e

    def note_states(self, nlp_system: str) -> dict[int, str]:
        """note_id -> text SHA-256 of the notes ``nlp_system`` last coded here (read-only; empty before any run)."""
        try:
            with psycopg.connect(self.url) as con:
                self._enter_schema(con, create=False)
                return read_note_states(_Transaction(con), nlp_system)
        except psycopg.Error as e:
            raise SinkError(f"reading clin_linker_note_state from {self.describe()} failed: {e}") from e

    def _enter_schema(self, con: psycopg.Connection, create: bool) -> None:
        """Make the schema the transaction's only one for unqualified names (TEMP tables still come first).

        The schema is created only when it is missing: ``create schema if not exists`` would need the CREATE
        privilege on the database even when the schema exists."""
        if create and con.execute("select 1 from pg_namespace where nspname = %s", [self.schema]).fetchone() is None:
            con.execute(sql.SQL("create schema {}").format(self._schema))
        con.execute(sql.SQL("set local search_path to {}").format(self._schema))
