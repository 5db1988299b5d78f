"""The clin_functioning detector: ICF d4 activity statements with their assistance level, device and distance, on
hand-written sentences and on the therapy dev set (tests/fixtures/icf_therapy_dev.jsonl)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from clin_linker.pipeline import context_component, functioning, sections  # noqa: F401  (factories)
from clin_linker.pipeline.omop import term_modifiers

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_functioning")
    nlp.add_pipe("clin_sections")
    nlp.add_pipe("clin_context")
    return nlp


@pytest.mark.parametrize(("text", "activity", "assistance", "device", "distance"), [
    ("Pt ambulated 200 ft with a front-wheeled walker, mod A.", "ambulated 200 ft", "moderate assist",
     "front-wheeled walker", "200 ft"),
    ("Sliding board transfer to the commode with max assist.", "Sliding board transfer", "maximal assist",
     "Sliding board", None),
    ("Climbed 8 steps with bilateral handrails and CGA.", "Climbed 8 steps", "contact guard", "handrails", None),
    ("Propels his manual wheelchair 300 feet, mod I.", "Propels his manual wheelchair", "modified independent",
     "manual wheelchair", "300 feet"),
    ("Sit-to-stand from the bed with SBA.", "Sit-to-stand", "standby assist", None, None),
    ("Lifts a 10 lb bag independently.", "Lifts", "independent", None, None),
    ("Walks 10 min a day outdoors.", "Walks", None, None, None),  # "min a" is minutes here, not min assist
    ("Total assist for bed to wheelchair transfers via Hoyer lift.", "bed to wheelchair transfers", "dependent",
     "Hoyer lift", None),
])
def test_activity_assistance_device_and_distance(nlp, text, activity, assistance, device, distance):
    (span,) = [e for e in nlp(text).ents if e._.detector == "functioning"]
    assert (span.text, span.label_) == (activity, "OBSERVATION")
    assert span._.functioning == {"assistance": assistance, "device": device, "distance": distance}


def test_parts_of_device_names_are_not_activities(nlp):
    doc = nlp("Rolling walker and gait belt at bedside; Hoyer lift and tub transfer bench ordered.")
    assert [e.text for e in doc.ents] == []


def test_negated_and_past_statements_are_flagged_by_context(nlp):
    negated = nlp("Patient did not ambulate today due to dizziness.")
    assert [(e.text, e._.is_negated) for e in negated.ents] == [("ambulate", True)]
    past = nlp("Prior to admission she walked 1 mile daily with a cane.")
    (walked,) = past.ents
    assert walked.text == "walked 1 mile" and walked._.is_historical and walked._.functioning["device"] == "cane"


def test_term_modifiers_carry_the_functioning_fields(nlp):
    (span,) = nlp("Ambulates 150 ft with a rolling walker, min assist.").ents
    assert term_modifiers(span, None).endswith(
        "assistance=minimal assist,device=rolling walker,distance=150 ft")


def test_dev_set_recall_and_precision():
    """The detector against the gold spans of the 87 dev sentences: overlap recall >= 0.85, precision >= 0.8."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_functioning")
    rows = [json.loads(line) for line in (FIXTURES / "icf_therapy_dev.jsonl").read_text().splitlines()]
    found = predicted = right = 0
    for row in rows:
        doc = nlp(row["text"])
        gold = [(g["start"], g["end"]) for g in row["entities"]]
        found += sum(any(e.start_char < end and start < e.end_char for e in doc.ents) for start, end in gold)
        predicted += len(doc.ents)
        right += sum(any(e.start_char < end and start < e.end_char for start, end in gold) for e in doc.ents)
    assert found / len(rows) >= 0.85 and right / predicted >= 0.8, (found / len(rows), right / predicted)


@pytest.mark.parametrize("text", [
    "Surgery was carried out under general anaesthesia.",
    "Two days later she was transferred to the ward.",
    "A mass in the descending colon.",
    "Blood pressure reached 230/110 mmHg.",
    "In the examination stands out a right hyporeflexia.",
    "A 47-year-old man with long-standing type 2 diabetes.",
    "Symptoms improved in the sitting position.",
    "A positive interferon gamma release assay.",
])
def test_case_report_phrasing_is_not_an_activity(nlp, text):
    assert [e.text for e in nlp(text).ents if e._.detector == "functioning"] == []
