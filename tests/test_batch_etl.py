"""The batch job as a nightly ETL (issue 14): the same rows however it runs, incremental runs against a real
PostgreSQL NOTE table, faults that leave the output as it was, long notes, retried bundles."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import psycopg
import pytest
from psycopg import sql

from clin_linker.beam_jobs import job as job_module
from clin_linker.beam_jobs.cli import main as cli_main
from clin_linker.beam_jobs.cli.run import sample_notes_path
from clin_linker.beam_jobs.job import WriteCodedShard, run_job
from clin_linker.beam_jobs.model_handler import NoteResult
from clin_linker.pipeline.long_notes import piece_bounds
from clin_linker.pipeline.omop import note_nlp_rows
from duckdb_rows import content_hash, query

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample_notes() -> list[dict]:
    return [json.loads(line) for line in sample_notes_path().read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def twelve_notes(sample_notes, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("notes") / "notes.jsonl"
    path.write_text("".join(json.dumps(n) + "\n" for n in sample_notes[:12]))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_note_nlp_content_whatever_the_batching_workers_or_runner(default_index, twelve_notes, tmp_path):
    """One worker, --batch-size 1, two worker processes, and Beam's EXTERNAL SDK worker pool (what Flink/Spark
    deployments run): byte-identical NOTE_NLP content (rows without nlp_date/nlp_datetime)."""
    index = str(default_index)
    runs = {
        "one worker": {},
        "batch size 1": {"batch_size": 1},
        "two workers": {"beam_args": ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                                      "--direct_num_workers=2"]},
    }
    hashes = {}
    for name, options in runs.items():
        out = tmp_path / f"{name.replace(' ', '_')}.duckdb"
        summary = run_job([twelve_notes], out, index_dir=index, linker_config={"threads": 1}, **options)
        assert summary.coded == 12 and summary.balanced()
        hashes[name] = content_hash(out, "note_nlp")
    port = _free_port()
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}  # else the pool's workers hang
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        old_path = os.environ["PATH"]
        os.environ["PATH"] = env["PATH"]
        out = tmp_path / "external.duckdb"
        run_job([twelve_notes], out, index_dir=index, linker_config={"threads": 1},
                beam_args=["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
                           f"--environment_config=localhost:{port}"])
        hashes["EXTERNAL worker pool"] = content_hash(out, "note_nlp")
    finally:
        os.environ["PATH"] = old_path
        pool.terminate()
        pool.wait(timeout=30)
    assert len(set(hashes.values())) == 1, hashes
    assert query(tmp_path / "one_worker.duckdb", "select count(*) from note_nlp")[0][0] > 12 * 10


def test_a_retried_bundle_batched_differently_leaves_each_note_once(nlp, sample_notes, tmp_path):
    """Shards are named after their notes, so a retry of the same batch overwrites; a retry that batched the notes
    differently leaves a note in two shards, and the driver keeps it once."""
    from clin_linker.pipeline.build import linker_of

    store = linker_of(nlp).resources.store
    results = []
    for note in sample_notes[:3]:
        rows = note_nlp_rows(nlp(note["note_text"]), note["note_id"], store, "sys", job_module.dt.datetime(2026, 1, 1))
        results.append(NoteResult(note["note_id"], "notes.jsonl", 1, rows, nlp_system="sys", text_sha256="x"))
    writer = WriteCodedShard(str(tmp_path / "stage"))
    (tmp_path / "stage").mkdir()
    for batch in ([results[0], results[1]], [results[0], results[1]], [results[1], results[2]], [results[2]]):
        list(writer.process(batch))  # the first batch twice (a plain retry), then a re-batched retry
    assert len(list((tmp_path / "stage").glob("coded-*.jsonl"))) == 3
    coded, shards = job_module._staged_shards(str(tmp_path / "stage"), tmp_path)
    assert [c["note_id"] for c in coded] == sorted(n["note_id"] for n in sample_notes[:3])
    kept = duckdb.sql(f"select note_id, count(*) from read_parquet({[str(p) for p in shards['note_nlp']]}) "
                      "group by note_id order by note_id").fetchall()
    assert kept == sorted((r.note_id, len(r.rows)) for r in results)


def test_a_note_longer_than_spacy_max_length_is_coded_in_pieces_with_exact_offsets(default_index, tmp_path):
    """A 1 MB note (here a scanned form's blank lines) is data: coded, offsets in the whole note, nothing lost."""
    head = "Assessment: type 2 diabetes mellitus and essential hypertension.\n\n"
    table = (" " * 99 + "\n") * 10_100
    tail = "\n\nPlan: start metformin for diabetes. Patient denies chest pain.\n"
    text = head + table + tail
    assert len(text) > 1_000_000
    notes = tmp_path / "long.jsonl"
    notes.write_text(json.dumps({"note_id": 7, "note_text": text}) + "\n")
    out = tmp_path / "long.duckdb"
    summary = run_job([notes], out, index_dir=str(default_index), linker_config={"threads": 1})
    assert summary.coded == 1 and summary.dead_lettered == 0
    mentions = query(out, "select start_char, end_char, lexical_variant from clin_linker_mention m join note_nlp n "
                          "using (note_nlp_id) order by start_char")
    assert all(text[start:end] == variant for start, end, variant in mentions)
    assert any(start < len(head) for start, _, _ in mentions)  # before the first cut ...
    tail_start = len(head) + len(table)
    assert any(start >= tail_start and text[start:end].lower() == "metformin" for start, end, _ in mentions)  # after
    cuts = piece_bounds(text)
    assert len(cuts) > 10 and cuts[0][0] == 0 and cuts[-1][1] == len(text)
    assert all(text[end - 1] == "\n" for _, end in cuts[:-1])  # cut after line breaks


def _pg_rows(url: str, schema: str, table: str, exclude: tuple[str, ...]) -> list[tuple]:
    with psycopg.connect(url) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position", [schema, table]).fetchall() if r[0] not in exclude]
        rows = con.execute(sql.SQL("select {} from {}.{}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema), sql.Identifier(table))).fetchall()
    return sorted(rows, key=repr)


def _run_cli(*args: str, capsys) -> tuple[int, str]:
    code = cli_main(["run", "--no-report", "--threads", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_incremental_runs_from_a_postgresql_note_table_code_only_what_changed(postgres, default_index, sample_notes,
                                                                              tmp_path, capsys):
    url = postgres.url
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("create schema src")
        con.execute("create table src.note (note_id bigint, person_id bigint, note_date date, note_text text)")
        with con.cursor().copy("copy src.note from stdin") as copy:
            for n in sample_notes[:10]:
                copy.write_row((n["note_id"], n.get("person_id"), n.get("note_date"), n["note_text"]))
            copy.write_row((424242, 1, None, None))  # a bad row: dead-lettered like a bad file line
    common = ["--notes-db", url, "--notes-table", "src.note", "--out", url, "--index", str(default_index),
              "--dead-letter", str(tmp_path / "dead.jsonl")]
    code, out = _run_cli(*common, "--schema", "incremental_cdm", "--incremental", capsys=capsys)
    assert code == 0 and "read 11 = coded 10 + dead-lettered 1 + unchanged 0" in out
    assert json.loads((tmp_path / "dead.jsonl").read_text().splitlines()[0])["reason_code"] == "empty_text"
    code, out = _run_cli(*common, "--schema", "incremental_cdm", "--incremental", capsys=capsys)
    assert code == 0 and "coded 0" in out and "nothing new: 10 notes are unchanged" in out
    changed = sample_notes[3]["note_id"]
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("update src.note set note_text = note_text || ' New: migraine with aura.' where note_id = %s",
                    [changed])
    code, out = _run_cli(*common, "--schema", "incremental_cdm", "--incremental", capsys=capsys)
    assert code == 0 and "coded 1 " in out.replace("coded 1 +", "coded 1 ") and "unchanged 9" in out
    with psycopg.connect(url) as con:
        runs = con.execute("select mode, notes_coded, notes_unchanged from incremental_cdm.clin_linker_run "
                           "order by ended_at, started_at").fetchall()
    assert runs == [("incremental", 10, 0), ("incremental", 0, 10), ("incremental", 1, 9)]
    code, _ = _run_cli(*common, "--schema", "incremental_clean", capsys=capsys)  # a clean full run of today's table
    assert code == 0
    volatile = ("nlp_date", "nlp_datetime", "run_id")
    for table in ("note_nlp", "clin_linker_mention", "clin_linker_note_state"):
        incremental = _pg_rows(url, "incremental_cdm", table, volatile)
        assert incremental == _pg_rows(url, "incremental_clean", table, volatile), table
    # CONCEPT is vocabulary, shared by every ETL of the database: rows are added when first needed and never deleted,
    # so the incremental schema may keep a local concept only the note's old text used, referenced by nothing
    kept = set(_pg_rows(url, "incremental_cdm", "concept", ()))
    clean = set(_pg_rows(url, "incremental_clean", "concept", ()))
    assert clean <= kept
    with psycopg.connect(url) as con:
        used = {r[0] for r in con.execute("select note_nlp_source_concept_id from incremental_cdm.note_nlp union "
                                          "select note_nlp_concept_id from incremental_cdm.note_nlp").fetchall()}
    assert not {row[0] for row in kept - clean} & used


def test_a_worker_killed_mid_run_fails_clearly_and_a_rerun_equals_a_clean_run(default_index, sample_notes, tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({**n, "note_id": n["note_id"] + 10_000 * k}) + "\n"
                             for k in range(3) for n in sample_notes))
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text("".join(json.dumps(n) + "\n" for n in sample_notes[:4]))
    out = tmp_path / "out.duckdb"
    assert run_job([earlier], out, index_dir=str(default_index), linker_config={"threads": 1}).coded == 4
    before = content_hash(out, "note_nlp")
    command = [str(VENV_BIN / "clin-linker"), "run", "--notes", str(notes), "--out", str(out), "--no-report",
               "--index", str(default_index), "--threads", "1", "--", "--runner=FnApiRunner",
               "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 300
    while job.poll() is None and time.time() < deadline and killed is None:
        time.sleep(0.5)
        workers = [p for p in psutil.Process(job.pid).children(recursive=True)
                   if "sdk_worker_main" in " ".join(p.cmdline()) and "python" in Path(p.cmdline()[0]).name]
        busy = [w for w in workers if w.cpu_times().user > 3.0]  # loading models and coding, not just started
        if busy:
            killed = busy[0].pid
            os.kill(killed, signal.SIGKILL)
    _, err = job.communicate(timeout=300)
    assert killed is not None, "no worker was seen busy: the job finished first"
    assert job.returncode == 1
    assert "failed: the Beam pipeline failed" in err and "Re-running the same command is safe" in err
    assert content_hash(out, "note_nlp") == before  # nothing of the killed run was written
    assert not list(tmp_path.glob(".out.duckdb.staging-*"))
    rerun = run_job([notes], out, index_dir=str(default_index), linker_config={"threads": 1})
    clean = tmp_path / "clean.duckdb"  # the same two runs, without the kill in between
    for run in (earlier, notes):
        run_job([run], clean, index_dir=str(default_index), linker_config={"threads": 1})
    assert rerun.coded == 3 * len(sample_notes)
    for table in ("note_nlp", "concept"):
        assert content_hash(out, table) == content_hash(clean, table), table
