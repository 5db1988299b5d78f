"""ICF ClaML loader on a hand-written ClaML sample (tests/fixtures/icf_claml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.icf_claml import load_icf_claml

SAMPLE = Path(__file__).parent / "fixtures" / "icf_claml" / "icf_sample.xml"


@pytest.fixture(scope="module")
def part():
    return load_icf_claml(SAMPLE)


def _names(part, code):
    return [(n.name, n.name_type) for n in part.names if n.concept_key == f"ICF:{code}"]


def test_categories_only(part):
    assert part.vocabulary_id == "ICF"
    assert part.version == "2017"
    assert [c.concept_code for c in part.concepts] == ["b280", "b2801", "b28010", "d450", "d4500"]


def test_walking(part):
    d450 = next(c for c in part.concepts if c.concept_code == "d450")
    assert d450.concept_key == "ICF:d450"
    assert (d450.concept_name, d450.domain_id, d450.concept_class_id) == ("Walking", "Observation", "ICF Category")
    assert d450.attributes == {"component": "Activities and Participation", "parent": None}  # parent is a block
    assert _names(part, "d450") == [
        ("Walking", "preferred"),
        ("walking short or long distances", "inclusion"),
        ("walking on different surfaces", "inclusion"),
        ("walking around obstacles", "inclusion"),
        # then our therapy wording (ontologies/data/icf_therapy_terms.tsv), for the codes the file holds
        ("ambulation", "synonym"), ("ambulating", "synonym"), ("gait", "synonym"), ("gait training", "synonym"),
    ]  # no German label, no definition, no exclusion


def test_nested_markup_and_whitespace(part):
    assert _names(part, "b28010") == [
        ("Pain in head and neck", "preferred"),
        ("headache", "inclusion"),
        ("neck pain", "inclusion"),
        ("pain in the temporomandibular region", "inclusion"),
    ]
    b28010 = next(c for c in part.concepts if c.concept_code == "b28010")
    assert b28010.attributes == {"component": "Body Functions", "parent": "b2801"}


def test_language_without_labels_is_an_error():
    message = r"field 'Rubric': category b2801 has no preferred label in 'de'.*lang='de'"
    with pytest.raises(SourceError, match=message):
        load_icf_claml(SAMPLE, lang="de")


def test_not_claml(tmp_path):
    path = tmp_path / "icf.xml"
    path.write_text("<ICF><Class code='d450' kind='category'/></ICF>")
    with pytest.raises(SourceError, match=r"icf\.xml: root element is <ICF>, not <ClaML>"):
        load_icf_claml(path)


def test_broken_xml_names_line(tmp_path):
    path = tmp_path / "icf.xml"
    path.write_text("<ClaML>\n<Class code='d450' kind='category'>\n</ClaML>\n")
    with pytest.raises(SourceError, match=r"icf\.xml, line 3: not well-formed XML"):
        load_icf_claml(path)
