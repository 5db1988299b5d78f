"""Where a run's rows go: the :class:`Sink` protocol between the Beam job and an output.

Why a protocol: the job stages everything it computed as Parquet shards (workers never open an output, DESIGN §5)
and then hands one :class:`StagedRun` to a sink in the main process. Each output (today DuckDB,
:class:`.duckdb.DuckDBSink`, with the per-note code lists of :mod:`.note_codes`; later PostgreSQL, an HTML report)
implements :meth:`Sink.write` and nothing else, so adding one touches neither the pipeline nor the job's reading,
validation and dead letters.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Sink", "StagedCodes", "StagedRun"]


@dataclass(frozen=True)
class StagedCodes:
    """The per-note code lists a run with document coding staged (``clin-linker run --code``)."""

    #: The coder's model id (column ``coder``): its earlier lists of the coded notes are replaced.
    coder: str
    #: Parquet shards of ``schemas.tables.NOTE_CODE`` rows (every ranked code, ``accepted`` or not).
    shards: Sequence[Path]


@dataclass(frozen=True)
class StagedRun:
    """What one run staged for its sink."""

    #: Parquet shards of staged NOTE_NLP rows (``schemas.tables.STAGED_NOTE_NLP``).
    note_nlp: Sequence[Path]
    #: Parquet shards of derived-event candidates (``schemas.tables.STAGED_EVENT``); None when the run did not
    #: derive events (``--derive-clinical-tables`` off): then the event tables must be left alone. An empty list
    #: means "derived, found none": the events the coded notes supported before are withdrawn.
    events: Sequence[Path] | None
    #: ``(note_id, nlp_system)`` of every note the run coded, with or without mentions.
    coded_notes: Sequence[tuple[int, str]]
    #: The document coder's lists; None when the run did not code documents: then their table is left alone.
    note_codes: StagedCodes | None = None
    #: The run's own record (a ``schemas.tables.RUN`` row): with it the sink also logs the run and keeps its
    #: mentions' structured columns (``schemas.tables.MENTION``) for review; None: those tables are left alone.
    run: Mapping[str, object] | None = None
    #: ``(note_id, nlp_system, text_sha256)`` of every coded note: replaces the note's row of
    #: ``clin_linker_note_state`` (``schemas.tables.NOTE_STATE``, with ``run["run_id"]``), which ``--incremental``
    #: compares against. Needs ``run``; empty: the table is left alone.
    note_states: Sequence[tuple[int, str, str]] = ()


class Sink(Protocol):
    """An output for a run's rows (see the module docstring for the contract)."""

    def write(self, run: StagedRun) -> dict[str, int]:
        """Write ``run``; return rows written per table (and ``*_replaced`` counts)."""
        ...

    def note_states(self, nlp_system: str) -> dict[int, str]:
        """note_id -> text SHA-256 of every note ``nlp_system`` last coded into this output (empty when none, or
        when the output or its ``clin_linker_note_state`` table does not exist yet)."""
        ...
