"""ICD-10-CM loader on the real tabular XML shipped in simple-icd-10-cm."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.icd10cm import concept_class, load_icd10cm
from clin_linker.ontologies.records import NAME_TYPES


@pytest.fixture(scope="module")
def loaded():
    start = time.perf_counter()
    part = load_icd10cm()
    return part, time.perf_counter() - start


@pytest.fixture(scope="module")
def part(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def by_code(part):
    return {c.concept_code: c for c in part.concepts}


@pytest.fixture(scope="module")
def names(part):
    found: dict[str, list[tuple[str, str]]] = {}
    for n in part.names:
        found.setdefault(n.concept_key, []).append((n.name, n.name_type))
    return found


def test_loads_fast(loaded):
    assert loaded[1] < 15


def test_counts_match_the_package(part, by_code):
    # 98,505 package entries = 22 chapters + 258 blocks + 98,225 codes, of which 39 are blocks named like a
    # code; chapters and blocks are not concepts. 74,719 billable codes is the CMS FY2026 count.
    assert len(part.concepts) == len(by_code) == 98_186
    assert sum(c.attributes["billable"] for c in part.concepts) == 74_719
    types = Counter(n.name_type for n in part.names)
    assert types["preferred"] == len(part.concepts)
    assert 12_000 < types["inclusion"] < 14_000
    assert set(types) <= set(NAME_TYPES)
    assert part.vocabulary_id == "ICD10CM"
    assert part.version == "FY2026 (April 1 2026)"


def test_billable_leaf(by_code, names):
    e119 = by_code["E11.9"]
    assert e119.concept_name == "Type 2 diabetes mellitus without complications"
    assert e119.attributes == {"billable": True, "chapter": "4", "parent": "E11"}
    assert e119.concept_class_id == "4-char billing code"
    assert e119.domain_id == "Condition"
    assert e119.standard_concept is None and e119.omop_concept_id is None
    assert names["ICD10CM:E11.9"][0] == ("Type 2 diabetes mellitus without complications", "preferred")


def test_category_is_not_billable(by_code):
    e11 = by_code["E11"]
    assert e11.attributes == {"billable": False, "chapter": "4", "parent": None}
    assert e11.concept_class_id == "3-char nonbill code"


def test_inclusion_terms(by_code, names):
    assert by_code["I10"].attributes["billable"] is True
    assert names["ICD10CM:I10"] == [
        ("Essential (primary) hypertension", "preferred"),
        ("high blood pressure", "inclusion"),
        ("hypertension (arterial) (benign) (essential) (malignant) (primary) (systemic)", "inclusion"),
    ]
    assert ("Hypertensive heart failure", "inclusion") in names["ICD10CM:I11.0"]


def test_notes_that_cite_codes_are_not_names(names):
    assert all(name == "Personal history of malignant neoplasm of esophagus" or t == "preferred"
               for name, t in names["ICD10CM:Z85.01"])
    # a vitamin or a code-like word inside a name is not a code citation
    assert ("megaloblastic anemia unresponsive to vitamin B12 or folate therapy", "inclusion") in names["ICD10CM:D53"]
    assert ("Vitamin B12 deficiency", "inclusion") in names["ICD10CM:E53.8"]


def test_seventh_character_codes(by_code):
    s72 = by_code["S72.001A"]
    assert s72.concept_name == ("Fracture of unspecified part of neck of right femur, "
                                "initial encounter for closed fracture")
    assert s72.attributes == {"billable": True, "chapter": "19", "parent": "S72.001"}
    assert s72.concept_class_id == "7-char billing code"
    assert by_code["S72.001"].attributes["billable"] is False
    assert by_code["S00.00XA"].attributes["parent"] == "S00.00"  # placeholder X
    assert "S06.1X7A" in by_code and "S06.1X7D" not in by_code  # the code list forbids D after death


def test_domains(by_code):
    assert by_code["Z00.00"].domain_id == "Observation"
    assert by_code["W19.XXXA"].domain_id == "Observation"
    assert by_code["U07.1"].domain_id == "Condition"


def test_concept_class_counts_characters_without_dot():
    assert concept_class("T36.0X1A", True) == "7-char billing code"
    assert concept_class("A00", False) == "3-char nonbill code"


def test_not_a_tabular_file(tmp_path):
    bad = tmp_path / "index.xml"
    bad.write_text("<ICD10CM.index><version>2026</version></ICD10CM.index>")
    with pytest.raises(SourceError, match=r"index\.xml.*not <ICD10CM\.tabular>.*tabular list"):
        load_icd10cm(bad)
