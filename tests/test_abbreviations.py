"""clin_abbreviations + linking_query: a note-defined short form or a listed clinical abbreviation links via its
long form; the span's own text is untouched."""
from __future__ import annotations

import pytest
import spacy

from clin_linker.pipeline.abbreviations import ABBREVIATIONS_TSV, linking_query, load_abbreviations, window_query


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_abbreviations")
    return nlp


def _query(doc, text: str, nth: int = 0) -> str:
    start = -1
    for _ in range(nth + 1):
        start = doc.text.index(text, start + 1)
    span = doc.char_span(start, start + len(text))
    assert span is not None
    return linking_query(span)


def test_defined_abbreviation_links_via_long_form(nlp):
    doc = nlp("Patient with chronic obstructive pulmonary disease (COPD) on oxygen. Assessment: COPD exacerbation.")
    assert _query(doc, "COPD", nth=1) == "chronic obstructive pulmonary disease"
    assert _query(doc, "COPD exacerbation") == "chronic obstructive pulmonary disease exacerbation"
    assert _query(doc, "chronic obstructive pulmonary disease") == "chronic obstructive pulmonary disease"


def test_note_definition_wins_over_the_list(nlp):
    doc = nlp("Normal physical examination (PE) today. PE unremarkable.")
    assert _query(doc, "PE", nth=1) == "physical examination"


@pytest.mark.parametrize(("text", "query"), [
    ("HTN", "hypertension"), ("DM2", "type 2 diabetes mellitus"), ("T2DM", "type 2 diabetes mellitus"),
    ("CHF", "congestive heart failure"), ("SOB", "shortness of breath"), ("MI", "myocardial infarction"),
    ("CAD", "coronary artery disease"), ("CKD stage 3a", "chronic kidney disease stage 3a"),
    ("UTI", "urinary tract infection"), ("AFib", "atrial fibrillation"), ("N/V", "nausea and vomiting"),
    ("DMARD", "DMARD"), ("pe", "pe"), ("essential hypertension", "essential hypertension"),
])
def test_listed_abbreviations(nlp, text, query):
    doc = nlp(f"Problems: {text} today.")
    assert _query(doc, text) == query


def test_span_text_unchanged(nlp):
    doc = nlp("PMH: HTN.")
    span = doc.char_span(5, 8)
    assert linking_query(span) == "hypertension" and span.text == "HTN"


def test_table_file_documented_and_parsed():
    lines = ABBREVIATIONS_TSV.read_text().splitlines()
    assert lines[0].startswith("#")
    table = load_abbreviations()
    for short in ("HTN", "DM2", "T2DM", "CHF", "SOB", "MI", "CAD", "CKD", "UTI", "COPD", "AFib", "HLD", "OSA",
                  "GERD", "DVT", "PE"):
        assert table[short]
    assert not any(k.startswith("#") for k in table)


def test_custom_table(tmp_path):
    path = tmp_path / "site.tsv"
    path.write_text("# site list\nXYZ\tsite syndrome\n")
    nlp = spacy.blank("en")
    nlp.add_pipe("clin_abbreviations", config={"table": str(path)})
    doc = nlp("Known XYZ and HTN.")
    assert _query(doc, "XYZ") == "site syndrome"
    assert _query(doc, "HTN") == "HTN"  # the custom table replaces the shipped list
    assert linking_query(doc.char_span(6, 9), table={}) == "XYZ"


def test_without_the_component_the_shipped_list_applies():
    doc = spacy.blank("en")("Known HTN.")
    assert linking_query(doc.char_span(6, 9)) == "hypertension"


@pytest.mark.parametrize(("text", "mention", "query"), [
    ("Abdominal CT of the pelvis, showed a mass.", "CT", "Abdominal CT of the pelvis"),
    ("She then had a renal ultrasound. It was normal.", "ultrasound", "had a renal ultrasound"),  # 3 words before
    ("After the biopsy; colonoscopy was done.", "colonoscopy", "colonoscopy was done"),  # stops at punctuation
])
def test_window_query_reads_the_words_around_the_mention_within_its_sentence(nlp, text, mention, query):
    doc = nlp(text)
    start = text.index(mention)
    span = doc.char_span(start, start + len(mention))
    assert window_query(span) == query
