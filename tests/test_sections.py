"""clin_sections: medspaCy's Sectionizer + our header rules -> span._.section; section -> concept id map."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from clin_linker.pipeline.context_component import assert_span, context_pipeline
from clin_linker.pipeline.sections import (
    DEFAULT_SECTION_CONCEPTS,
    SECTION_LOINC,
    SECTION_TITLES,
    section_concept_id,
    section_rules,
)

SAMPLE = Path(__file__).parents[1] / "beam_jobs" / "data" / "sample_notes.jsonl"


@pytest.fixture(scope="module")
def nlp():
    return context_pipeline()


def _section(nlp, text: str, target: str, nth: int = 0) -> str | None:
    start = -1
    for _ in range(nth + 1):
        start = text.index(target, start + 1)
    return assert_span(nlp, text, start, start + len(target))._.section


@pytest.mark.parametrize(("header", "title"), [
    ("HPI:", "history_of_present_illness"), ("History of Present Illness:", "history_of_present_illness"),
    ("PMH:", "past_medical_history"), ("Past medical history:", "past_medical_history"),
    ("PSH:", "past_surgical_history"), ("Family History:", "family_history"), ("FH:", "family_history"),
    ("Social History:", "social_history"), ("Medications:", "medications"), ("Meds:", "medications"),
    ("Allergies:", "allergies"), ("Assessment/Plan:", "assessment_plan"), ("Assessment and Plan:", "assessment_plan"),
    ("A/P:", "assessment_plan"), ("ROS:", "review_of_systems"), ("Review of Systems:", "review_of_systems"),
    ("Physical Exam:", "physical_exam"), ("Imaging:", "imaging"), ("FINDINGS:", "imaging"),
    ("IMPRESSION:", "imaging"), ("Chief complaint:", "chief_complaint"), ("Labs:", "labs_and_studies"),
])
def test_headers(nlp, header, title):
    assert _section(nlp, f"{header} cough.", "cough") == title
    assert title in SECTION_TITLES


def test_sample_note_sections(nlp):
    note = json.loads(SAMPLE.read_text().splitlines()[0])["note_text"]
    assert _section(nlp, note, "essential hypertension") == "history_of_present_illness"
    assert _section(nlp, note, "hyperlipidemia") == "past_medical_history"
    assert _section(nlp, note, "lisinopril") == "medications"
    assert _section(nlp, note, "Hyperlipidemia") == "assessment_plan"


def test_headers_must_start_a_line(nlp):
    assert _section(nlp, "Cardiology consult for chest pain. Plan: aspirin.", "aspirin") is None
    assert _section(nlp, "Seen today.\nPlan: aspirin.", "aspirin") == "assessment_plan"


def test_before_first_header_is_none(nlp):
    assert _section(nlp, "Telephone note about cough.\nPMH: asthma.", "cough") is None


def test_header_words_do_not_modify_the_body(nlp):
    text = "Family History:\nHypertension."
    span = assert_span(nlp, text, 16, 28)
    assert span._.is_family and not span._.is_historical
    span = assert_span(nlp, "HISTORY OF PRESENT ILLNESS: cough.", 28, 33)
    assert not span._.is_historical


def test_section_concept_id():
    assert section_concept_id("family_history", DEFAULT_SECTION_CONCEPTS) == 0
    assert section_concept_id("family_history", {"family_history": 4267147}) == 4267147
    assert section_concept_id("unknown", {"family_history": 4267147}) == 0
    assert section_concept_id(None, {"family_history": 4267147}) == 0
    assert section_concept_id("family_history") == 0
    assert set(DEFAULT_SECTION_CONCEPTS) == set(SECTION_TITLES)
    assert set(SECTION_LOINC) <= set(SECTION_TITLES)


def test_rules_load_and_drop_defaults():
    literals = {r.literal for r in section_rules()}
    assert "ROS:" in literals and "Consult" not in literals
    assert {r.category for r in section_rules()} <= set(SECTION_TITLES) | {"allergy", "observation_and_plan",
                                                                           "neurological"}


def test_span_section_is_a_writable_title_even_after_medspacy():
    import medspacy  # noqa: F401

    assert Span.get_extension("section")[2] is None  # no getter: ours, not medspaCy's Section object
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_sections", config={"require_start_line": False})
    doc = nlp.make_doc("Seen. PMH: asthma.")
    doc.ents = [doc.char_span(11, 17, label="X")]
    doc = nlp.get_pipe("clin_sections")(nlp.get_pipe("sentencizer")(doc))
    assert doc.ents[0]._.section == "past_medical_history"
