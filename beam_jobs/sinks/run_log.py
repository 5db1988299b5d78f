"""A run's own record and its mentions' details -> ``clin_linker_run`` + ``clin_linker_mention``, and each coded
note's text hash -> ``clin_linker_note_state``, in any database sink (:mod:`.load`).

Why: NOTE_NLP keeps a mention's flags, code and score only as ``term_modifiers`` text, and nothing of the run as a
whole (dead letters, time, inputs, the NIL threshold). A review (``clin-linker report``) reads these two tables
instead of parsing text or keeping state of its own. Like NOTE_NLP, a re-run of a note replaces its mention rows of
the same ``nlp_system``; the run log only grows. ``clin_linker_note_state`` keeps each coded note's text hash for
``--incremental`` runs. Runs inside the caller's transaction. None of these tables holds note text.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from ...schemas import run_ddl
from ...schemas.tables import MENTION, NOTE_STATE, RUN
from .database import Database, columns

_MENTION_FROM_STAGED = [name for name in MENTION.names if name != "run_id"]


def log_run(db: Database, run: Mapping[str, object], note_states: Sequence[tuple[int, str, str]] = ()) -> dict[str, int]:
    """Insert the run's row (columns of :data:`RUN`), replace the mention rows of every ``coded_notes`` note with the
    structured columns of ``staged_note_nlp`` and the notes' text hashes (``note_states``, :data:`NOTE_STATE`);
    returns rows inserted (``clin_linker_run``, ``clin_linker_mention``, ``clin_linker_note_state``) and
    ``mentions_replaced``."""
    db.script(run_ddl(db.dialect))
    db.stage("new_run", RUN, pa.Table.from_pylist([dict(run)], schema=RUN))
    db.run("clin_linker_run", f"insert into clin_linker_run ({columns(RUN.names)}) select {columns(RUN.names)} "
                              "from new_run")
    replaced = db.run("clin_linker_mention", "delete from clin_linker_mention where (note_id, nlp_system) in "
                                             "(select note_id, nlp_system from coded_notes)")
    inserted = db.run("clin_linker_mention",
                      f"insert into clin_linker_mention (run_id, {columns(_MENTION_FROM_STAGED)}) "
                      f"select {db.param}, {columns(_MENTION_FROM_STAGED)} from staged_note_nlp", [run["run_id"]])
    states = 0
    if note_states:
        db.stage("new_states", NOTE_STATE, pa.Table.from_pylist(
            [{"note_id": n, "nlp_system": system, "text_sha256": digest, "run_id": run["run_id"]}
             for n, system, digest in note_states], schema=NOTE_STATE))
        states = db.run("clin_linker_note_state",
                        f"insert into clin_linker_note_state ({columns(NOTE_STATE.names)}) "
                        f"select {columns(NOTE_STATE.names)} from new_states on conflict (note_id, nlp_system) "
                        "do update set text_sha256 = excluded.text_sha256, run_id = excluded.run_id")
    return {"clin_linker_run": 1, "clin_linker_mention": inserted, "mentions_replaced": replaced,
            "clin_linker_note_state": states}


def read_note_states(db: Database, nlp_system: str) -> dict[int, str]:
    """note_id -> text_sha256 that ``nlp_system`` last coded (empty before the table exists)."""
    if not db.rows("select 1 from information_schema.tables where table_schema = current_schema() "
                   "and table_name = 'clin_linker_note_state'"):
        return {}
    return dict(db.rows(f"select note_id, text_sha256 from clin_linker_note_state where nlp_system = {db.param}",
                        [nlp_system]))
