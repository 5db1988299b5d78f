"""Where a run's rows go: the :class:`Sink` protocol between the Beam job and an output.

Why a protocol: the job stages everything it computed as Parquet shards (workers never open an output, DESIGN §5)
and then hands one :class:`StagedRun` to a sink in the main process. Each output (a DuckDB file,
:class:`.duckdb.DuckDBSink`; a PostgreSQL database, :class:`.postgresql.PostgreSQLSink`; :func:`open_sink` picks
one from the ``--out`` value) implements :meth:`Sink.write` and :meth:`Sink.note_states` and nothing else, so adding
one touches neither the pipeline nor the job's reading, validation and dead letters. The database sinks share their
SQL (:mod:`.load`): only the connection, the transaction and the staging of rows differ.

Contract for implementations:

- read the shards with the schemas of :mod:`clin_linker.schemas.tables` (:data:`STAGED_NOTE_NLP`,
  :data:`STAGED_EVENT`, :data:`NOTE_CODE`); a database sink writes only the CDM columns of each CDM table (the
  staged mention columns beyond them go to clin-linker's :data:`MENTION` table, with the run's :data:`RUN` row);
- be idempotent: a re-run of the same notes with the same ``nlp_system`` replaces what that system wrote for them,
  never duplicates it (row ids are deterministic, see ``pipeline.omop.stable_id``);
- write all of a run or nothing of it (one transaction where the output has them);
- return rows written per table (plus any ``*_replaced`` counts): the job reports them as they are.
"""
from __future__ import annotations

from pathlib import Path

from ...ontologies.store import ConceptStore
from ..note_tables import is_postgresql_url
from .duckdb import DuckDBSink
from .postgresql import PostgreSQLSink
from .staged import Sink, SinkError, StagedCodes, StagedRun

__all__ = ["Sink", "SinkError", "StagedCodes", "StagedRun", "open_sink"]


def open_sink(out: str | Path, store: ConceptStore, schema: str | None = None) -> Sink:
    """The sink for ``--out``: a ``postgresql://`` (or ``postgres://``) URL writes to that database, in ``schema``
    (default ``public``); anything else is a DuckDB file path. Nothing is connected or created yet (a bad
    ``schema`` is refused here, before any work)."""
    if is_postgresql_url(str(out)):
        return PostgreSQLSink(str(out), store, "public" if schema is None else schema)
    if schema is not None:
        raise ValueError(f"--schema applies to PostgreSQL outputs (--out postgresql://...), not to the DuckDB file "
                         f"{out}: drop --schema")
    return DuckDBSink(Path(out), store)
