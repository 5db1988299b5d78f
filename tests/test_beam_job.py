"""The Beam job end to end (DirectRunner) on the shipped sample notes with the real int8 encoder."""
from __future__ import annotations

import csv
import json

import duckdb
import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clin_linker.beam_jobs.cli import sample_notes_path
from clin_linker.beam_jobs.job import run_job
from clin_linker.schemas import json_schema


@pytest.fixture(scope="module")
def notes():
    return [json.loads(line) for line in sample_notes_path().read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def job(default_index, notes, tmp_path_factory):
    """Sample notes as JSONL, plus a CSV and a Parquet file that add good and bad notes."""
    root = tmp_path_factory.mktemp("job")
    extra_csv = root / "extra.csv"
    with open(extra_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["note_id", "person_id", "note_text"])
        writer.writerow([9001, 77, "Assessment: gout flare. Plan: colchicine."])
        writer.writerow([notes[0]["note_id"], 77, "duplicate id of the first sample note"])
        writer.writerow(["", 77, "no id"])
    extra_parquet = root / "extra.parquet"
    pq.write_table(pa.table({"note_id": [9002, 9003], "note_text": ["History of asthma.", "   "]}), extra_parquet)
    bad_jsonl = root / "bad.jsonl"
    bad_jsonl.write_bytes(b'{"note_id": 9004, "note_text": "caf\xe9"}\n{"note_id": 9005, "note_text": 5}\n')
    out = root / "omop.duckdb"
    summary = run_job([sample_notes_path(), extra_csv, extra_parquet, bad_jsonl], out,
                      index_dir=str(default_index), batch_size=8)
    return summary, out


def test_nothing_is_lost(job, notes):
    summary, _ = job
    assert summary.read == len(notes) + 3 + 2 + 2
    assert summary.balanced()
    assert summary.coded == len(notes) + 2  # 9001, 9002
    assert summary.dead_reasons == {"duplicate_note_id": 1, "missing_note_id": 1, "empty_text": 1,
                                    "undecodable_bytes": 1, "non_text_body": 1}


def test_dead_letter_file_is_schema_valid_and_text_free(job):
    summary, _ = job
    records = [json.loads(line) for line in open(summary.dead_letter_file)]
    assert len(records) == summary.dead_lettered
    for record in records:
        jsonschema.validate(record, json_schema("dead_letter"))
        assert "note_text" not in json.dumps(record.get("record") or {})
    dup = next(r for r in records if r["reason_code"] == "duplicate_note_id")
    assert dup["source"].endswith("extra.csv")  # the sample-notes copy came first (by file, line)


def test_note_nlp_rows_join_concept_and_follow_the_cdm(job, notes):
    summary, out = job
    con = duckdb.connect(str(out), read_only=True)
    n, notes_with_rows = con.execute("select count(*), count(distinct note_id) from note_nlp").fetchone()
    assert n > len(notes) and n == summary.rows_written["note_nlp"]
    assert notes_with_rows >= len(notes) - 2
    orphans = con.execute(
        "select count(*) from note_nlp n left join concept c on c.concept_id = n.note_nlp_source_concept_id "
        "where c.concept_id is null").fetchone()[0]
    assert orphans == 0
    assert con.execute("select count(*) from note_nlp where note_nlp_concept_id >= 2000000000").fetchone()[0] == 0
    bad = con.execute("select count(*) from note_nlp where term_exists not in ('Y','N') "
                      "or term_temporal not in ('present','past') or length(snippet) > 250").fetchone()[0]
    assert bad == 0
    # offsets point at the lexical variant in the original note text
    texts = {n["note_id"]: n["note_text"] for n in notes}
    for note_id, offset, variant in con.execute('select note_id, "offset", lexical_variant from note_nlp').fetchall():
        if note_id in texts:
            assert texts[note_id][int(offset):int(offset) + len(variant)] == variant
    i10 = con.execute("select count(*) from note_nlp n join concept c on c.concept_id = n.note_nlp_source_concept_id "
                      "where c.vocabulary_id = 'ICD10CM' and c.concept_code = 'I10'").fetchone()[0]
    assert i10 >= 1
    con.close()


def test_rerun_replaces_rows_instead_of_duplicating(job, default_index, notes):
    """A re-run (other batching) leaves exactly one set of rows per note for this nlp_system."""
    summary, out = job
    sample_ids = tuple(n["note_id"] for n in notes)
    con = duckdb.connect(str(out), read_only=True)
    before_sample = con.execute(f"select count(*) from note_nlp where note_id in {sample_ids}").fetchone()[0]
    before_other = con.execute(f"select count(*) from note_nlp where note_id not in {sample_ids}").fetchone()[0]
    con.close()
    again = run_job([sample_notes_path()], out, index_dir=str(default_index), batch_size=5)
    assert again.rows_written["note_nlp_replaced"] == before_sample
    con = duckdb.connect(str(out), read_only=True)
    after = con.execute("select count(*), count(distinct note_nlp_id) from note_nlp").fetchone()
    assert after[0] == after[1] == before_other + again.rows_written["note_nlp"]
    assert con.execute("select count(distinct nlp_system) from note_nlp").fetchone()[0] == 1
    con.close()


def test_multi_processing_direct_runner_loses_nothing(default_index, notes, tmp_path):
    """The same job with two worker processes (each loads the pipeline once)."""
    summary = run_job([sample_notes_path()], tmp_path / "mp.duckdb", index_dir=str(default_index), batch_size=8,
                      beam_args=["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                 "--direct_num_workers=2"])
    assert summary.read == summary.coded == len(notes) and summary.dead_lettered == 0
    assert summary.rows_written["note_nlp"] > len(notes)
