"""Notes from a database: an OMOP NOTE table in PostgreSQL or DuckDB (``clin-linker run --notes-db --notes-table``).

Why a table and not an export: the OMOP database the job writes to usually holds the NOTE table already, and a
nightly run should read it where it is. Rows come out as :class:`.notes.RawRecord` in ``note_id`` order, so they
pass the same validation and dead letters as file rows (``source`` names the database without its password and the
table; ``position`` is the row's 1-based rank by note_id).

Names are checked, never trusted: the table must be ``table`` or ``schema.table`` of plain identifiers. ``--where`` is
an SQL condition the user writes (e.g. ``note_date >= '2026-01-01'``); it runs inside a read-only transaction
(PostgreSQL) or on a read-only connection (DuckDB), so it can filter but cannot change anything.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .notes import RawRecord

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: OMOP NOTE columns the job reads (the others are ignored); note_id and note_text are required by validation.
NOTE_COLUMNS = ("note_id", "person_id", "note_date", "note_datetime", "note_type_concept_id", "note_title",
                "note_text", "encoding_concept_id", "language_concept_id", "visit_occurrence_id")
_FETCH_ROWS = 1000


def is_postgresql_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def redact_url(location: str) -> str:
    """The URL without its password (for messages, dead letters and the run log): libpq takes one in the authority
    (``user:secret@host``) or as a query parameter (``?password=secret``)."""
    location = re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", location)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", location) if is_postgresql_url(location) else location


def split_table_name(name: str) -> tuple[str, ...]:
    """``table`` or ``schema.table`` -> its parts; anything else is refused (no SQL through a table name)."""
    parts = tuple(name.split("."))
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise ValueError(f"--notes-table {name!r} is not a table name: give TABLE or SCHEMA.TABLE, each a letter or _ "
                         "followed by letters, digits or _ (at most 63 characters)")
    return parts


@dataclass(frozen=True)
class NoteTable:
    """Where to read notes from: a database URL (``postgresql://…`` or a DuckDB file path), a table, a filter."""

    database: str
    table: str = "note"
    where: str | None = None

    def __post_init__(self) -> None:
        split_table_name(self.table)
        if not is_postgresql_url(self.database) and not Path(self.database).exists():
            raise FileNotFoundError(f"--notes-db {self.database} is neither a postgresql:// URL nor an existing DuckDB "
                                    "file")

    def describe(self) -> str:
        """``database#table [where …]``, password removed: the ``source`` of every record read from it."""
        where = f" where {self.where}" if self.where else ""
        return f"{redact_url(self.database)}#{self.table}{where}"

    def read(self) -> Iterator[RawRecord]:
        """Every selected row as a raw record (``note_id`` order); NOTE columns the table lacks are simply absent."""
        reader = self._read_postgresql if is_postgresql_url(self.database) else self._read_duckdb
        source = self.describe()
        for position, record in enumerate(reader(), start=1):
            yield RawRecord(source, position, record)

    def _select(self, columns: list[str], quote) -> str:
        table = ".".join(quote(p) for p in split_table_name(self.table))
        where = f" where ({self.where})" if self.where else ""
        return f"select {', '.join(quote(c) for c in columns)} from {table}{where} order by {quote('note_id')}"

    def _read_postgresql(self) -> Iterator[dict]:
        import psycopg

        with psycopg.connect(self.database) as con:
            con.read_only = True
            parts = split_table_name(self.table)
            schema, table = (parts if len(parts) == 2 else (None, parts[0]))
            present = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_name = %s "
                "and table_schema = coalesce(%s, current_schema())", [table, schema]).fetchall()]
            columns = [c for c in NOTE_COLUMNS if c in present]
            if not present:
                raise ValueError(f"{self.describe()}: table {self.table} does not exist (or has no columns you may read)")
            with con.cursor(name="clin_linker_notes") as cursor:  # server-side: rows stream, not all in memory
                cursor.itersize = _FETCH_ROWS
                cursor.execute(self._select(columns, lambda n: f'"{n}"'))
                for row in cursor:
                    yield dict(zip(columns, row))

    def _read_duckdb(self) -> Iterator[dict]:
        import duckdb

        con = duckdb.connect(self.database, read_only=True)
        try:
            parts = split_table_name(self.table)
            present = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_name = ? "
                "and (? is null or table_schema = ?)", [parts[-1], parts[0] if len(parts) == 2 else None,
                                                       parts[0] if len(parts) == 2 else None]).fetchall()]
            if not present:
                raise ValueError(f"{self.describe()}: table {self.table} does not exist")
            columns = [c for c in NOTE_COLUMNS if c in present]
            result = con.execute(self._select(columns, lambda n: f'"{n}"'))
            while rows := result.fetchmany(_FETCH_ROWS):
                for row in rows:
                    yield dict(zip(columns, row))
        finally:
            con.close()
