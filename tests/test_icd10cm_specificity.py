"""The specificity rules on the real FY2026 Tabular List (parsed once per module, a few seconds)."""
from __future__ import annotations

import pytest

from clin_linker.ontologies.icd10cm import load_icd10cm
from clin_linker.ontologies.icd10cm_specificity import CATEGORY, COMPLETED, Specificity
from clin_linker.ontologies.records import VocabularyPart
from clin_linker.ontologies.store import ConceptStore, build_store


@pytest.fixture(scope="module")
def tabular() -> VocabularyPart:
    return load_icd10cm()


@pytest.fixture(scope="module")
def rules(tabular) -> Specificity:
    return Specificity(tabular.concepts)


def test_tree_from_codes_matches_the_tabular_nesting(tabular, rules):
    """The rules derive parent and billable from code and concept class (what a store or Athena has):
    they must agree with what the XML parser read for every code."""
    for concept in tabular.concepts:
        assert rules.parent(concept.concept_code) == concept.attributes["parent"], concept.concept_code
        assert rules.is_billable(concept.concept_code) == concept.attributes["billable"], concept.concept_code


@pytest.mark.parametrize(("code", "expected"), [
    ("K59.0", "K59.00"),      # rule 1: "Constipation, unspecified"
    ("K59.0-", "K59.00"),     # a dash code is its category
    ("R10", "R10.9"),         # rule 1: "Unspecified abdominal pain"
    ("R31", "R31.9"),         # "Hematuria, unspecified"
    ("S72.001", "S72.001A"),  # rule 2: 7th character A, initial encounter
    ("S72.00", "S72.009A"),   # rule 1 then rule 2: unspecified femur, initial encounter
    ("O36.59", "O36.5990"),   # rule 1 twice: unspecified trimester, 7th character 0 "not applicable or unspecified"
    ("I1A", "I1A.0"),         # rule 3: the only child
])
def test_completed_when_the_tabular_leaves_no_choice(rules, code, expected):
    assert rules.complete(code) == (expected, COMPLETED)
    assert rules.is_billable(expected)


@pytest.mark.parametrize("code", ["I10", "K59.00", "S72.001A", "E11.9"])
def test_billable_codes_are_unchanged(rules, code):
    assert rules.complete(code) == (code, None)


@pytest.mark.parametrize("code", [
    "E11",     # E11.8 "... with unspecified complications" asserts complications: not the unspecified child
    "A01",     # A01.4 "Paratyphoid fever, unspecified" is narrower than "Typhoid and paratyphoid fevers"
    "C79.8",   # secondary neoplasm of other specified sites: breast, genital organs or other
    "C79.8-",
])
def test_ambiguous_categories_stay_and_are_flagged(rules, code):
    assert rules.complete(code) == (code.rstrip("-"), CATEGORY)


def test_every_completion_is_a_valid_code_and_billable_unless_flagged(tabular, rules):
    for concept in tabular.concepts:
        code, flag = rules.complete(concept.concept_code)
        assert rules.is_valid(code)
        assert rules.is_billable(code) == (flag != CATEGORY), concept.concept_code
        assert code.startswith(concept.concept_code)


@pytest.mark.parametrize("code", ["K59.99", "K59.0-", "ICD10CM:K59.00", "k59.00", "K5900", ""])
def test_invalid_codes_are_rejected(rules, code):
    assert not rules.is_valid(code)


def test_complete_names_the_code_it_cannot_read(rules):
    with pytest.raises(ValueError, match=r"'K59\.99' is not an ICD-10-CM code.*check is_valid"):
        rules.complete("K59.99")


def test_rules_read_a_built_concept_store(tabular, tmp_path):
    """A store keeps no parent attribute in its concepts: the same rules work from codes and classes."""
    part = VocabularyPart("ICD10CM", "test", "test",
                          concepts=[c for c in tabular.concepts if c.concept_code.startswith(("K59", "S72.00"))])
    build_store([part], tmp_path)
    rules = Specificity(ConceptStore(tmp_path).concepts())
    assert rules.complete("K59.0") == ("K59.00", COMPLETED)
    assert rules.complete("S72.00") == ("S72.009A", COMPLETED)
    assert rules.complete("K59.3") == ("K59.3", CATEGORY)  # toxic or other megacolon


def test_no_icd10cm_concepts_is_a_clear_error():
    with pytest.raises(ValueError, match="no ICD10CM concepts"):
        Specificity([])
