"""What the job hands a sink (:class:`StagedRun`) and what a sink is (:class:`Sink`); the contract is in the
package docstring (:mod:`clin_linker.beam_jobs.sinks`). Kept apart from the package so that the sinks can import
it while the package imports the sinks (:func:`~clin_linker.beam_jobs.sinks.open_sink`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import RunFailed


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


class SinkError(RunFailed):
    """A write that failed and was rolled back: the message names the output (without its password) and the table
    being loaded, and says whether re-running the same command is safe."""
