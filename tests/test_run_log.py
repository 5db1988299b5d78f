"""Every `clin-linker run` logs itself (clin_linker_run) and keeps its mentions' structured fields
(clin_linker_mention) next to NOTE_NLP, in the same transaction; a re-run replaces the mentions like NOTE_NLP rows.
Real job, real shipped pipeline and default index."""
from __future__ import annotations

import json

import pytest

from duckdb_rows import query
from clin_linker.beam_jobs.job import run_job

NOTES = [
    {"note_id": 1, "note_text": "Patient with type 2 diabetes mellitus and essential hypertension. Denies chest pain."},
    {"note_id": 2, "note_text": "Family history: mother had breast cancer. Possible pneumonia; start amoxicillin."},
    {"note_text": "no note_id: a dead letter"},
]



@pytest.fixture(scope="module")
def twice(default_index, tmp_path_factory):
    root = tmp_path_factory.mktemp("run_log")
    notes = root / "notes.jsonl"
    notes.write_text("".join(json.dumps(n) + "\n" for n in NOTES))
    db = root / "omop.duckdb"
    first = run_job([notes], db, index_dir=str(default_index), linker_config={"threads": 1})
    second = run_job([notes], db, index_dir=str(default_index), linker_config={"threads": 1})
    return db, notes, first, second


def test_each_run_is_logged_with_its_counts_inputs_and_vocabularies(twice):
    db, notes, first, second = twice
    runs = query(db, "select notes_read, notes_coded, notes_dead_lettered, dead_letter_reasons, dead_letter_file, "
                      "note_files, note_format, seconds, nlp_system, vocabularies, coder from clin_linker_run "
                      "order by started_at")
    assert len(runs) == 2  # the log grows; the rows of the runs do not
    for (read, coded, dead, reasons, dead_file, files, fmt, seconds, system, vocabularies, coder), summary in zip(
            runs, (first, second)):
        assert (read, coded, dead) == (summary.read, summary.coded, summary.dead_lettered) == (3, 2, 1)
        assert json.loads(reasons) == summary.dead_reasons == {"missing_note_id": 1}
        assert dead_file == summary.dead_letter_file and json.loads(files) == [str(notes)] and fmt == "auto"
        assert seconds > 0 and coder is None
        assert system == query(db, "select any_value(nlp_system) from note_nlp")[0][0]
        assert {v["vocabulary_id"] for v in json.loads(vocabularies)} >= {"ICD10CM", "HPO"}


def test_mentions_mirror_note_nlp_and_a_rerun_replaces_them(twice):
    db, _, _, second = twice
    latest = query(db, "select run_id from clin_linker_run order by started_at desc limit 1")[0][0]
    rows = query(db, "select m.note_id, n.note_id, m.start_char, n.\"offset\", m.end_char, n.lexical_variant, "
                      "m.concept_key, n.note_nlp_source_concept_id, m.run_id, m.negated, n.term_modifiers, m.candidates "
                      "from clin_linker_mention m full join note_nlp n using (note_nlp_id)")
    assert len(rows) == second.rows_written["note_nlp"] > 0
    assert second.rows_written["mentions_replaced"] == second.rows_written["clin_linker_mention"] == len(rows)
    texts = {n["note_id"]: n["note_text"] for n in NOTES if "note_id" in n}
    for note_id, nlp_note_id, start, offset, end, variant, key, concept_id, run_id, negated, modifiers, cands in rows:
        assert note_id == nlp_note_id and str(start) == offset and run_id == latest
        assert texts[note_id][start:end] == variant
        assert (key is None) == (concept_id == 0) and f"negated={str(negated).lower()}" in modifiers
        candidates = json.loads(cands)
        assert candidates and all(c["concept_name"] for c in candidates)
        if key is not None:
            assert candidates[0]["concept_key"] == key


def test_the_logged_nil_threshold_is_the_rule_the_linker_applied(twice):
    db, *_ = twice
    threshold = query(db, "select nil_threshold from clin_linker_run limit 1")[0][0]
    assert threshold is not None
    assert query(db, "select count(*) from clin_linker_mention where score is not null "
                      "and (concept_key is null) <> (score < ?)", [threshold])[0][0] == 0
