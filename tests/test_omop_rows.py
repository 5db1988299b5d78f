"""Coded spans -> NOTE_NLP rows: ids, assertion fields, and standard concepts via Athena "Maps to"."""
from __future__ import annotations

import datetime as dt

import spacy

from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.store import ConceptStore, build_store
from clin_linker.pipeline import extensions  # noqa: F401
from clin_linker.pipeline.omop import concept_rows, note_nlp_id, note_nlp_rows

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
    assert all(c["standard_concept"] is None for c in concepts)
