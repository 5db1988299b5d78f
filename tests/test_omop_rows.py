"""Coded spans -> NOTE_NLP rows: ids, assertion fields, and standard concepts via Athena "Maps to"."""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
import spacy

from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.store import ConceptStore, build_store
from clin_linker.pipeline import extensions  # noqa: F401
from clin_linker.pipeline.omop import (
    assertion,
    concept_rows,
    event_id,
    is_affirmed_present,
    note_nlp_id,
    note_nlp_rows,
    stable_id,
)
from clin_linker.schemas.tables import CONCEPT, NOTE_NLP, STAGED_NOTE_NLP

from athena_fixture import write_athena_export

RUN_AT = dt.datetime(2026, 11, 27, 9, 30)


def _store(tmp_path) -> ConceptStore:
    build_store(load_athena(write_athena_export(tmp_path / "athena")), tmp_path / "store")
    return ConceptStore(tmp_path / "store")


def _doc(text, spans):
    nlp = spacy.blank("en")
    doc = nlp(text)
    ents = []
    for (start, end, key, score) in spans:
        span = doc.char_span(start, end, label="CONDITION")
        span._.candidates = [(key, score)] if key else [("ICD10CM:K92.2", score)]
        span._.concept, span._.score = key, score
        ents.append(span)
    doc.ents = ents
    return doc


def test_source_and_standard_concepts_from_athena(tmp_path):
    store = _store(tmp_path)
    text = "GI bleed today. No gastrointestinal hemorrhage."
    doc = _doc(text, [(0, 8, "ICD10CM:K92.2", 0.91), (19, 46, None, 0.4)])
    doc.ents[1]._.is_negated = True
    rows = note_nlp_rows(doc, 42, store, "clin-linker test", RUN_AT)
    assert rows[0]["note_nlp_source_concept_id"] == 35208414  # real ICD10CM id
    assert rows[0]["note_nlp_concept_id"] == 192671  # its standard SNOMED concept via Maps to
    assert rows[0]["term_exists"] == "Y" and rows[0]["term_temporal"] == "present"
    assert rows[0]["offset"] == "0" and rows[0]["lexical_variant"] == "GI bleed"
    assert "code=ICD10CM:K92.2" in rows[0]["term_modifiers"] and "score=0.91" in rows[0]["term_modifiers"]
    nil = rows[1]
    assert nil["note_nlp_source_concept_id"] == 0 and nil["note_nlp_concept_id"] == 0
    assert nil["term_exists"] == "N" and "negated=true" in nil["term_modifiers"] and "code=NIL" in nil["term_modifiers"]


def test_staged_rows_are_note_nlp_plus_the_mentions_structured_fields(tmp_path):
    """Summaries and later outputs read these columns; nothing parses term_modifiers."""
    store = _store(tmp_path)
    doc = _doc("GI bleed today. No gastrointestinal hemorrhage.", [(0, 8, "ICD10CM:K92.2", 0.914), (19, 46, None, 0.4)])
    doc.ents[1]._.is_negated = True
    doc.ents[1]._.section = "past_medical_history"
    linked, nil = note_nlp_rows(doc, 42, store, "clin-linker test", RUN_AT)
    assert list(linked) == list(nil) == STAGED_NOTE_NLP.names
    assert STAGED_NOTE_NLP.names[:len(NOTE_NLP)] == NOTE_NLP.names
    structured = [c for c in STAGED_NOTE_NLP.names if c not in NOTE_NLP.names]
    assert {c: linked[c] for c in structured} == {
        "label": "CONDITION", "concept_key": "ICD10CM:K92.2", "vocabulary_id": "ICD10CM", "score": 0.914,
        "negated": False, "family": False, "hypothetical": False, "uncertain": False, "historical": False,
        "section": None, "start_char": 0, "end_char": 8,
        "candidates": json.dumps([{"concept_key": "ICD10CM:K92.2", "concept_name": store["ICD10CM:K92.2"].concept_name,
                                   "score": 0.914}], separators=(",", ":"))}
    assert (nil["concept_key"], nil["vocabulary_id"], nil["negated"], nil["section"]) == (
        None, None, True, "past_medical_history")
    assert (nil["start_char"], nil["end_char"]) == (19, 46)
    assert json.loads(nil["candidates"])[0]["concept_key"] == "ICD10CM:K92.2"  # a NIL mention keeps its candidates
    assert "score=0.91" in linked["term_modifiers"]  # the text keeps its rounding; the column keeps the score


# the ids of rows already written by earlier versions: the hash inputs must never change
@pytest.mark.parametrize(("made", "expected"), [
    (lambda: note_nlp_id(1, 0, 8, "ICD10CM:K92.2", "sys"), 5759827161681587884),
    (lambda: note_nlp_id(1, 0, 8, None, "sys"), 8812067167984295195),
    (lambda: event_id("condition_occurrence", 7, 80180, 0, dt.date(2026, 3, 2)), 5175082603063003126),
    (lambda: event_id("condition_occurrence", 7, 0, 2000000001, dt.date(2026, 3, 2)), 5751349459685359009),
])
def test_row_ids_are_the_ones_earlier_runs_wrote(made, expected):
    assert made() == expected


def test_stable_id_separates_its_parts():
    assert stable_id("a", "bc") != stable_id("ab", "c")
    assert stable_id(1, "NIL") == stable_id("1", "NIL")  # parts are hashed as text


FLAGS = ("is_negated", "is_family", "is_hypothetical", "is_uncertain", "is_historical")


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=len(FLAGS))))
def test_one_assertion_rule_for_note_nlp_and_events(flags):
    (span,) = _doc("GI bleed.", [(0, 8, "ICD10CM:K92.2", 0.9)]).ents
    for name, value in zip(FLAGS, flags):
        setattr(span._, name, value)
    negated, family, hypothetical, uncertain, historical = flags
    expected = ("N" if negated or family or hypothetical or uncertain else "Y", "past" if historical else "present")
    assert assertion(span) == expected
    assert is_affirmed_present(span) == (expected == ("Y", "present"))


def test_note_nlp_id_is_deterministic_and_distinguishes_inputs():
    a = note_nlp_id(1, 0, 8, "ICD10CM:K92.2", "sys")
    assert a == note_nlp_id(1, 0, 8, "ICD10CM:K92.2", "sys")
    assert len({a, note_nlp_id(2, 0, 8, "ICD10CM:K92.2", "sys"), note_nlp_id(1, 0, 8, None, "sys"),
                note_nlp_id(1, 0, 8, "ICD10CM:K92.2", "sys2")}) == 4
    assert 0 <= a < 2**63


def test_local_ids_only_in_the_source_field_and_get_concept_rows(tmp_path, default_index):
    from clin_linker.ontologies.index import store_dir_of

    store = ConceptStore(store_dir_of(default_index))
    doc = _doc("Gout.", [(0, 4, "HPO:HP:0001997", 1.0)])
    (row,) = note_nlp_rows(doc, 7, store, "sys", RUN_AT)
    assert row["note_nlp_source_concept_id"] >= 2_000_000_000
    assert row["note_nlp_concept_id"] == 0  # no Athena vocabulary loaded: never a local id here
    concepts = concept_rows([row["note_nlp_source_concept_id"], 0], store)
    assert {c["concept_id"] for c in concepts} == {row["note_nlp_source_concept_id"], 0}
    assert all(list(c) == CONCEPT.names for c in concepts)
    assert all(c["standard_concept"] is None for c in concepts)
