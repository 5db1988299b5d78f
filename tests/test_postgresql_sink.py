"""The PostgreSQL sink against a real server (tests/postgres_server.py): it writes what the DuckDB sink writes,
re-runs replace, a load that dies half-way leaves nothing behind, and --schema cannot carry SQL.

The staged run is built the way the job's workers build it: a few sample notes through the shipped pipeline
(linking, derived events, the document coder), the rows written to Parquet shards with the real schemas, one shard
per note so that a run over some of the notes is a slice.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from clin_linker.beam_jobs.cli.run import sample_notes_path
from clin_linker.beam_jobs.model_handler import CodingOptions
from clin_linker.beam_jobs.sinks import SinkError, StagedCodes, StagedRun, open_sink
from clin_linker.beam_jobs.sinks.duckdb import DuckDBSink
from clin_linker.beam_jobs.sinks.note_codes import note_code_rows
from clin_linker.beam_jobs.sinks.postgresql import PostgreSQLSink
from clin_linker.pipeline.build import linker_of, model_ids
from clin_linker.pipeline.clinical_events import note_person_and_date
from clin_linker.pipeline.omop import event_rows, nlp_system, note_nlp_rows
from clin_linker.schemas.tables import (CONCEPT, EVENT_SOURCE, EVENT_TABLES, MENTION, NOTE_CODE, NOTE_NLP, NOTE_STATE,
                                        RUN, STAGED_EVENT, STAGED_NOTE_NLP)

from duckdb_rows import query

NOTES = 4
#: Every table a run writes, with the columns compared (NOTE_NLP's run date aside: it differs between two stagings).
TABLES = {"note_nlp": [c for c in NOTE_NLP.names if c not in ("nlp_date", "nlp_datetime")],
          "concept": CONCEPT.names, "clin_linker_mention": MENTION.names, "clin_linker_note_state": NOTE_STATE.names,
          "clin_linker_run": RUN.names, "clin_linker_note_code": NOTE_CODE.names,
          "clin_linker_event_source": EVENT_SOURCE.names, **{t.name: t.schema.names for t in EVENT_TABLES}}


@pytest.fixture(scope="module")
def staged(nlp, tmp_path_factory) -> StagedRun:
    """The first sample notes coded by the shipped pipeline, staged as the job stages them."""
    notes = [json.loads(line) for line in sample_notes_path().read_text().splitlines() if line.strip()][:NOTES]
    root = tmp_path_factory.mktemp("staged")
    store = linker_of(nlp).resources.store
    system = nlp_system(model_ids(nlp))
    coder = CodingOptions().load(store)
    run_at = dt.datetime(2026, 3, 2, 9, 30)
    nlp_shards, event_shards, code_shards = [], [], []
    for doc, note in zip(nlp.pipe(n["note_text"] for n in notes), notes):
        note_id = note["note_id"]
        person, day = note_person_and_date(note_id, note)
        for prefix, rows, schema, shards in (
                ("note_nlp", note_nlp_rows(doc, note_id, store, system, run_at), STAGED_NOTE_NLP, nlp_shards),
                ("events", event_rows(doc, note_id, person, day, store, system), STAGED_EVENT, event_shards),
                ("note_code", note_code_rows(note_id, coder(doc), coder.model_id, store), NOTE_CODE, code_shards)):
            shards.append(root / f"{prefix}-{note_id}.parquet")
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), shards[-1])
    run = {"run_id": "a" * 32, "nlp_system": system, "started_at": run_at, "seconds": 1.5, "notes_read": NOTES,
           "notes_coded": NOTES, "notes_dead_lettered": 0, "dead_letter_reasons": "{}", "dead_letter_file": "dead.jsonl",
           "note_files": json.dumps([str(sample_notes_path())]), "note_format": "jsonl", "nil_threshold": 0.5,
           "vocabularies": "[]", "coder": coder.model_id, "ended_at": run_at, "mode": "full", "notes_unchanged": 0}
    states = [(n["note_id"], system, hashlib.sha256(n["note_text"].encode()).hexdigest()) for n in notes]
    return StagedRun(nlp_shards, event_shards, [(n["note_id"], system) for n in notes],
                     StagedCodes(coder.model_id, code_shards), run, states)


def _first(run: StagedRun, n: int, run_id: str) -> StagedRun:
    """The same run over its first ``n`` notes only (one shard per note), logged as run ``run_id``."""
    return dataclasses.replace(run, note_nlp=run.note_nlp[:n], events=run.events[:n], coded_notes=run.coded_notes[:n],
                               note_codes=StagedCodes(run.note_codes.coder, run.note_codes.shards[:n]),
                               run={**run.run, "run_id": run_id, "notes_coded": n}, note_states=run.note_states[:n])


def _store(nlp):
    return linker_of(nlp).resources.store


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=repr)


def _pg_content(url: str, schema: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as con:
        return {table: _sorted(con.execute(sql.SQL("select {} from {}.{}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(schema), sql.Identifier(table))).fetchall())
            for table, cols in TABLES.items()}


def _duckdb_content(path) -> dict[str, list[tuple]]:
    return {table: _sorted(query(path, f"select {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} from {table}"))
            for table, cols in TABLES.items()}


def test_postgresql_gets_what_duckdb_gets(postgres, staged, nlp, tmp_path):
    pg = PostgreSQLSink(postgres.url, _store(nlp), "same")
    assert pg.note_states(staged.coded_notes[0][1]) == {}  # before any run: no schema, no table
    duck = DuckDBSink(tmp_path / "omop.duckdb", _store(nlp))
    counts = pg.write(staged)
    assert counts == duck.write(staged)
    assert counts["note_nlp"] > NOTES and counts["concept"] > 0 and counts["clin_linker_note_code"] > 0
    assert counts["condition_occurrence"] > 0  # the sample notes' diagnoses
    content = _pg_content(postgres.url, "same")
    assert content == _duckdb_content(tmp_path / "omop.duckdb")
    assert all(content[table] for table in ("note_nlp", "concept", "clin_linker_mention", "clin_linker_note_state",
                                            "clin_linker_run", "clin_linker_note_code"))
    system = staged.coded_notes[0][1]
    assert pg.note_states(system) == duck.note_states(system) and len(pg.note_states(system)) == NOTES


def test_a_rerun_replaces_and_never_duplicates(postgres, staged, nlp):
    sink = open_sink(postgres.url, _store(nlp), "rerun")
    first = sink.write(staged)
    before = _pg_content(postgres.url, "rerun")
    again = sink.write(dataclasses.replace(staged, run={**staged.run, "run_id": "b" * 32}))
    assert again["note_nlp"] == again["note_nlp_replaced"] == first["note_nlp"]
    assert again["clin_linker_mention"] == again["mentions_replaced"] == first["clin_linker_mention"]
    assert again["clin_linker_note_code"] == again["note_codes_replaced"] == first["clin_linker_note_code"]
    assert again["concept"] == 0 and again["clin_linker_note_state"] == NOTES
    after = _pg_content(postgres.url, "rerun")
    assert [r[0] for r in after.pop("clin_linker_run")] == ["a" * 32, "b" * 32]  # the log grows, one row per run
    assert after.pop("clin_linker_mention") == [(r[0], "b" * 32, *r[2:]) for r in before.pop("clin_linker_mention")]
    assert after.pop("clin_linker_note_state") == [(*r[:3], "b" * 32) for r in before.pop("clin_linker_note_state")]
    before.pop("clin_linker_run")
    assert after == before


def test_a_load_killed_half_way_leaves_nothing_and_a_rerun_completes_it(postgres, staged, nlp):
    """The loader is held on the last table it loads (CONCEPT: NOTE_NLP, events, code lists and run log are already
    written inside its transaction), then its connection is killed: the database must look as before."""
    url = postgres.url.replace("postgresql:///", "postgresql://postgres:s3cret@/")  # trust: the password is unused
    earlier, full = _first(staged, 2, "e" * 32), staged
    sink = PostgreSQLSink(url, _store(nlp), "killed")
    sink.write(earlier)
    before = _pg_content(postgres.url, "killed")
    failure: list[BaseException] = []

    def load() -> None:
        try:
            sink.write(full)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            failure.append(e)

    # the watcher is autocommit: inside one transaction pg_stat_activity would stay the snapshot of its first read
    with psycopg.connect(postgres.url) as blocker, psycopg.connect(postgres.url, autocommit=True) as watcher:
        blocker.execute("lock table killed.concept in access exclusive mode")
        loader = threading.Thread(target=load)
        loader.start()
        deadline = time.monotonic() + 30
        waiting: list[tuple] = []
        while not waiting and loader.is_alive() and time.monotonic() < deadline:
            waiting = watcher.execute("select pid, query from pg_stat_activity where wait_event_type = 'Lock'").fetchall()
            time.sleep(0.05)
        assert len(waiting) == 1 and waiting[0][1].startswith("insert into concept"), (waiting, failure)
        assert watcher.execute("select pg_terminate_backend(%s)", [waiting[0][0]]).fetchone()[0]
        blocker.rollback()
    loader.join(30)
    assert len(failure) == 1 and isinstance(failure[0], SinkError)
    message = str(failure[0])
    assert "postgres:***@" in message and "s3cret" not in message and "(schema killed)" in message
    assert "while loading concept" in message and "re-running the same command is safe" in message
    assert _pg_content(postgres.url, "killed") == before

    sink.write(full)
    clean = PostgreSQLSink(postgres.url, _store(nlp), "clean")
    clean.write(earlier)
    clean.write(full)
    assert _pg_content(postgres.url, "killed") == _pg_content(postgres.url, "clean")


@pytest.mark.parametrize("schema", ["public; drop table note_nlp", 'x" cascade; --', "", "9lives", "a" * 64, "a.b"])
def test_schema_must_be_a_plain_identifier(postgres, nlp, schema):
    with pytest.raises(ValueError, match=r"--schema .* is not a plain SQL identifier.*e\.g\. --schema cdm"):
        open_sink(postgres.url, _store(nlp), schema)


def test_open_sink_picks_the_output_from_its_location(postgres, nlp, tmp_path):
    store = _store(nlp)
    assert isinstance(open_sink(tmp_path / "omop.duckdb", store, None), DuckDBSink)
    assert open_sink("postgres:///x?host=/tmp", store, None).schema == "public"
    assert open_sink(postgres.url, store, "cdm").schema == "cdm"
    with pytest.raises(ValueError, match="--schema applies to PostgreSQL outputs"):
        open_sink(tmp_path / "omop.duckdb", store, "cdm")


def test_an_unreachable_database_is_named_without_its_password(nlp, tmp_path, staged):
    sink = PostgreSQLSink(f"postgresql://me:hunter2@/postgres?host={tmp_path}", _store(nlp))
    with pytest.raises(SinkError, match=r"could not connect to PostgreSQL postgresql://me:\*\*\*@/") as failed:
        sink.write(staged)
    assert "hunter2" not in str(failed.value)


def test_a_password_given_as_a_query_parameter_is_not_named_either(nlp, tmp_path, staged):
    sink = PostgreSQLSink(f"postgresql://me@/postgres?password=hunter2&host={tmp_path}", _store(nlp))
    with pytest.raises(SinkError, match=r"password=\*\*\*&host=") as failed:
        sink.write(staged)
    assert "hunter2" not in str(failed.value)
