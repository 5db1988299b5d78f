"""``clin-linker run --code``: the batch job writes each note's ranked code list (table clin_linker_note_code) and,
with --derive-clinical-tables, derives the ICD-10-CM condition rows from the same list (issue 12), on the real
shipped pipeline, coder model and default index."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import spacy
from spacy.tokens import Span

from duckdb_rows import query
from clin_linker.beam_jobs.cli import main
from clin_linker.ontologies.index import store_dir_of
from clin_linker.ontologies.store import ConceptStore
from clin_linker.pipeline import extensions  # noqa: F401  (registers span._.concept and the context flags)
from clin_linker.pipeline.coder import DocumentCode
from clin_linker.pipeline.omop import code_event_rows, event_rows

NOTES = [
    {"note_id": 1, "person_id": 11, "note_date": "2024-03-01",
     "note_text": "Patient with constipation and essential hypertension."},
    {"note_id": 2, "person_id": 12, "note_date": "2024-03-02",
     "note_text": "She was admitted with fever and abdominal pain. She denies cough."},
    {"note_id": 3, "note_text": "Assessment: gout flare. No chest pain."},  # no person_id: codes, but no events
]
CODE_COLUMNS = "note_id, coder, code_rank, vocabulary_id, concept_code, concept_id, round(score, 6), accepted, " \
               "modifiers, evidence"


def _run(tmp_path, index, db, *options: str) -> str:
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps(n) + "\n" for n in NOTES))
    code = main(["run", "--notes", str(notes), "--out", str(db), "--index", str(index), "--threads", "1", *options])
    assert code == 0
    return str(db)



@pytest.fixture(scope="module")
def coded_run(default_index, tmp_path_factory):
    """One coded run with derived tables, then the same run again with other batching into the same database."""
    root = tmp_path_factory.mktemp("run_coding")
    db = root / "omop.duckdb"
    _run(root, default_index, db, "--code", "--derive-clinical-tables", "--batch-size", "3")
    first = {
        "codes": query(db, f"select {CODE_COLUMNS} from clin_linker_note_code order by note_id, coder, code_rank"),
        "conditions": query(db, "select * from condition_occurrence order by condition_occurrence_id"),
        "note_nlp": query(db, "select count(*) from note_nlp")[0][0],
    }
    _run(root, default_index, db, "--code", "--derive-clinical-tables", "--batch-size", "1")
    return db, first


def test_the_run_writes_each_notes_ranked_code_list(coded_run):
    db, first = coded_run
    rows = query(db, "select note_id, coder, code_rank, concept_code, accepted, evidence from clin_linker_note_code "
                      "order by note_id, code_rank")
    assert {r[0] for r in rows} == {1, 2, 3}  # the note without person_id is coded too
    assert len({r[1] for r in rows}) == 1 and rows[0][1] != "zero-shot"  # the shipped coder model
    for note_id in (1, 2, 3):
        ranks = [r[2] for r in rows if r[0] == note_id]
        assert ranks == list(range(1, len(ranks) + 1))
    note1 = {r[3]: r for r in rows if r[0] == 1}
    assert note1["K59.00"][4] and note1["I10"][4], sorted(note1)
    evidence = json.loads(note1["I10"][5])
    assert {"text": "essential hypertension", "source": "retrieval", "rank": 0} in [
        {k: e[k] for k in ("text", "source", "rank")} for e in evidence], evidence
    assert all(NOTES[0]["note_text"][e["start"]:e["end"]] == e["text"] for e in evidence)
    # every ranked code is written (not only the accepted ones) and joins CONCEPT
    assert any(not r[4] for r in rows), "the run must keep the codes below the coder's threshold"
    assert query(db, "select count(*) from clin_linker_note_code n left join concept c "
                      "on c.concept_id = n.concept_id where c.concept_id is null")[0][0] == 0


def test_a_re_run_with_other_batching_replaces_the_lists_and_events_identically(coded_run):
    db, first = coded_run
    assert query(db, f"select {CODE_COLUMNS} from clin_linker_note_code order by note_id, coder, code_rank") \
        == first["codes"]
    assert query(db, "select * from condition_occurrence order by condition_occurrence_id") == first["conditions"]
    assert query(db, "select count(*) from note_nlp")[0][0] == first["note_nlp"]


def test_derived_conditions_are_the_accepted_codes(coded_run, default_index):
    db, _ = coded_run
    store = ConceptStore(store_dir_of(default_index))
    accepted = query(db, "select note_id, vocabulary_id, concept_code from clin_linker_note_code where accepted")
    for note_id in (1, 2):
        derived = query(db, "select c.condition_source_value, c.person_id, c.condition_start_date "
                             "from condition_occurrence c join clin_linker_event_source s "
                             "on s.event_table = 'condition_occurrence' and s.event_id = c.condition_occurrence_id "
                             "where s.note_id = ?", [note_id])
        # ICD-10-CM codes of the Observation domain (Z codes) have no event table; the others are conditions
        expected = {code for n, vocabulary, code in accepted
                    if n == note_id and store[f"{vocabulary}:{code}"].domain_id == "Condition"}
        assert {d[0] for d in derived} == expected and len(derived) == len(expected)
        note = NOTES[note_id - 1]
        assert {(d[1], d[2].isoformat()) for d in derived} == {(note["person_id"], note["note_date"])}
    assert {"K59.00", "I10"} <= {code for n, _, code in accepted if n == 1}
    assert query(db, "select count(*) from clin_linker_event_source where note_id = 3")[0][0] == 0


def test_code_options_are_checked_before_any_note_is_read(default_index, tmp_path, capsys):
    db = tmp_path / "omop.duckdb"
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps(NOTES[0]) + "\n")
    base = ["run", "--notes", str(notes), "--out", str(db), "--index", str(default_index)]
    assert main([*base, "--code", "--target", "HPO"]) == 2
    assert "ICD10CM must be the first --target" in capsys.readouterr().err
    assert main([*base, "--zero-shot"]) == 2
    assert "apply only with --code" in capsys.readouterr().err
    assert main([*base, "--code", "--coder", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not db.exists()


def test_code_events_are_the_accepted_codes_and_replace_the_coded_vocabularys_mention_events(default_index):
    store = ConceptStore(store_dir_of(default_index))
    day = dt.date(2024, 3, 1)
    codes = [DocumentCode("ICD10CM:I10", 0.9, True, ()), DocumentCode("ICD10CM:K59.00", 0.4, False, ()),
             DocumentCode("ICD10CM:Z79.4", 0.9, True, ())]  # Z79.4 is of the Observation domain: no event table
    from_codes = code_event_rows(codes, 1, 11, day, store, "system")
    assert [(r["event_table"], r["source_value"], r["source_concept_id"]) for r in from_codes] == [
        ("condition_occurrence", "I10", store["ICD10CM:I10"].omop_concept_id)]

    doc = spacy.blank("en")("Hypertension and constipation.")
    doc.ents = [Span(doc, 0, 1, label="CONDITION"), Span(doc, 2, 3, label="CONDITION")]
    doc.ents[0]._.concept, doc.ents[1]._.concept = "ICD10CM:I10", "HPO:HP:0002019"
    from_mentions = event_rows(doc, 1, 11, day, store, "system")
    assert [r["source_value"] for r in from_mentions] == ["I10", "HP:0002019"]
    # the same condition from a mention or from a code is one event (same id), so the sink keeps one row
    assert from_mentions[0]["event_id"] == from_codes[0]["event_id"]
    # with the coder deciding ICD-10-CM, only the other vocabularies' mentions make events
    assert [r["source_value"] for r in event_rows(doc, 1, 11, day, store, "system", "ICD10CM")] == ["HP:0002019"]
