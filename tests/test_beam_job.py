"""The Beam job end to end (DirectRunner) on the shipped sample notes with the real int8 encoder."""
from __future__ import annotations

import csv
import json

import duckdb
import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clin_linker.beam_jobs.cli.run import sample_notes_path
from clin_linker.beam_jobs.job import run_job
from clin_linker.pipeline.labels import DOMAIN_LABELS
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
                      index_dir=str(default_index), batch_size=8, derive_clinical_tables=True)
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
    # the summary comes from the staged rows' own columns and agrees with what was written
    nil = con.execute("select count(*) from note_nlp where note_nlp_source_concept_id = 0").fetchone()[0]
    assert (summary.linked, summary.nil) == (n - nil, nil) and sum(summary.mentions_by_label.values()) == n
    assert set(summary.mentions_by_label) <= set(DOMAIN_LABELS.values())
    assert sum(summary.linked_by_label.values()) == summary.linked and all(
        0 <= summary.linked_by_label[label] <= n_label for label, n_label in summary.mentions_by_label.items())
    counts = [count for _, count in summary.top_codes]
    assert counts == sorted(counts, reverse=True) and 0 < len(counts) <= 10
    top_code = summary.top_codes[0][0].split()[0]
    vocabulary, code = top_code.split(":", 1)
    assert con.execute("select count(*) from note_nlp n join concept c on c.concept_id = n.note_nlp_source_concept_id "
                       "where c.vocabulary_id = ? and c.concept_code = ?", [vocabulary, code]).fetchone()[0] \
        == counts[0]
    # without --target every default vocabulary competes: hypertension goes to SNOMED's hypertensive disorders
    hypertension = con.execute(
        "select count(*) from note_nlp n join concept c on c.concept_id = n.note_nlp_source_concept_id "
        "where lower(n.lexical_variant) like '%hypertension%' and c.vocabulary_id = 'SNOMED' "
        "and c.concept_code in ('38341003', '59621000')").fetchone()[0]
    assert hypertension >= 1
    con.close()


def test_demo_output_follows_the_omop_semantics(job, default_index):
    """Issue 6 on the demo (sample notes, default ICD-10-CM + HPO store: no Athena, so no LOINC and no standard
    concepts): assertion fields in range, local ids only in source fields, the section map applied."""
    from clin_linker.ontologies.index import store_dir_of
    from clin_linker.ontologies.store import ConceptStore
    from clin_linker.pipeline.section_concepts import resolve_section_concepts
    from clin_linker.schemas.tables import EVENT_TABLES

    summary, out = job
    expected = resolve_section_concepts(ConceptStore(store_dir_of(default_index)))
    assert set(expected.values()) == {0}  # documented: without a LOINC vocabulary every section maps to 0
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("select count(*) from note_nlp where term_exists is null or term_exists not in ('Y','N') "
                       "or term_temporal is null or term_temporal not in ('present','past')").fetchone()[0] == 0
    assert con.execute("select count(*) from note_nlp where note_nlp_concept_id >= 2000000000 "
                       "or section_concept_id >= 2000000000").fetchone()[0] == 0
    assert con.execute("select count(*) from note_nlp where note_nlp_source_concept_id >= 2000000000").fetchone()[0]
    sections = con.execute("select regexp_extract(term_modifiers, 'section=([a-z_]+)', 1), section_concept_id "
                           "from note_nlp").fetchall()
    found = [(title, sid) for title, sid in sections if title != "none"]
    assert len({title for title, _ in found}) >= 8 and len(found) > len(sections) / 2
    assert all(sid is not None for _, sid in sections)
    assert all(sid == expected[title] for title, sid in found)
    assert all(sid == 0 for title, sid in sections if title == "none")

    # --derive-clinical-tables: NLP type, concept 0 without Athena, local ids only in the source field, each
    # event backed by an affirmed, present mention of its note, one row per person + source concept + date
    assert summary.type_concept_check == "absent"
    assert any(s.startswith("note 9001: fields note_date and note_datetime are missing") for s in summary.event_skips)
    assert any(s.startswith("note 9002: field person_id is missing") for s in summary.event_skips)
    events = 0
    for t in EVENT_TABLES:
        event, concept, source, day = (t.column(c) for c in ("event_id", "concept_id", "source_concept_id",
                                                              "start_date"))
        rows = con.execute(
            f"select e.{concept}, e.{t.column('type_concept_id')}, e.{source}, c.concept_id is not null, "
            f"exists (select 1 from clin_linker_event_source s join note_nlp n on n.note_id = s.note_id "
            f"and n.nlp_system = s.nlp_system where s.event_table = '{t.name}' and s.event_id = e.{event} "
            f"and n.note_nlp_source_concept_id = e.{source} and n.term_exists = 'Y' "
            f"and n.term_temporal = 'present') "
            f"from {t.name} e left join concept c on c.concept_id = e.{source}").fetchall()
        events += len(rows)
        for concept_id, type_id, source_id, joins, backed in rows:
            assert concept_id == 0 and type_id == 32858 and source_id >= 2_000_000_000 and joins and backed
        n, distinct = con.execute(f"select count(*), count(distinct (person_id, {source}, {day})) "
                                  f"from {t.name}").fetchone()
        assert n == distinct
    assert events == sum(summary.rows_written[t] for t in ("condition_occurrence", "drug_exposure",
                                                           "procedure_occurrence")) > 0
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


def test_a_note_rerun_into_no_mentions_loses_its_old_rows(job, default_index, tmp_path):
    """Replacement is by the notes a run coded, not by the notes that still have mentions."""
    _, out = job
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("select count(*) from note_nlp where note_id = 9001").fetchone()[0] > 0  # gout, colchicine
    con.close()
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps({"note_id": 9001, "person_id": 77, "note_text": "Seen today."}) + "\n")
    again = run_job([edited], out, index_dir=str(default_index))
    assert again.coded == 1 and again.notes_without_mentions == 1
    assert again.rows_written["note_nlp"] == 0 and again.rows_written["note_nlp_replaced"] > 0
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("select count(*) from note_nlp where note_id = 9001").fetchone()[0] == 0
    con.close()


def test_multi_processing_direct_runner_loses_nothing(default_index, notes, tmp_path):
    """The same job with two worker processes (each loads the pipeline once); derived events come back too."""
    summary = run_job([sample_notes_path()], tmp_path / "mp.duckdb", index_dir=str(default_index), batch_size=8,
                      beam_args=["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                 "--direct_num_workers=2"], derive_clinical_tables=True)
    assert summary.read == summary.coded == len(notes) and summary.dead_lettered == 0
    assert summary.rows_written["note_nlp"] > len(notes)
    assert summary.rows_written["condition_occurrence"] > 0 and summary.event_skips == []
