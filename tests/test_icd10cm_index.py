"""The Alphabetic Index converter and loader on a hand-made fixture in the CDC index's flattened structure
(tests/fixtures/icd10cm_index/index_sample.tsv), against the real FY2026 Tabular List."""
from __future__ import annotations

import tomllib
from collections import Counter, defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.icd10cm import load_icd10cm
from clin_linker.ontologies.icd10cm_index import (
    KEPT_TABLES,
    PACKAGED_INDEX,
    convert_index,
    index_names,
    read_cdc_tsv,
    read_entries,
)
from clin_linker.ontologies.icd10cm_index_phrases import natural_phrases
from clin_linker.ontologies.icd10cm_specificity import Specificity
from clin_linker.ontologies.sources import load_sources

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).parent / "fixtures" / "icd10cm_index" / "index_sample.tsv"


@pytest.fixture(scope="module")
def rules() -> Specificity:
    return Specificity(load_icd10cm().concepts)


@pytest.fixture(scope="module")
def result(rules):
    return index_names(list(read_cdc_tsv(SAMPLE)), rules)


@pytest.fixture(scope="module")
def codes_of(result) -> dict[str, set[str]]:
    """lower-cased name -> the codes it names."""
    names = defaultdict(set)
    for name in result.names:
        names[name.name.lower()].add(name.concept_key.removeprefix("ICD10CM:"))
    return names


@pytest.mark.parametrize(("path", "expected"), [
    (["Pain", "abdominal"], ["abdominal pain"]),
    (["Pain", "abdominal", "lower"], ["lower abdominal pain"]),
    (["Diabetes, diabetic", "with", "amyotrophy"], ["diabetes with amyotrophy"]),
    (["Diabetes, diabetic", "type 2", "with", "amyotrophy"], ["type 2 diabetes with amyotrophy"]),
    (["Fever", "hemorrhagic", "Bolivian"], ["Bolivian hemorrhagic fever"]),
    (["Fever", "paratyphoid", "A"], ["paratyphoid fever A"]),
    (["Aberrant", "artery", "basilar NEC"], ["aberrant basilar artery"]),
    (["History", "family", "of", "diabetes"], ["family history of diabetes"]),
    (["Hypertension, hypertensive", "kidney"], ["kidney hypertension", "hypertensive kidney"]),
    (["Aarskog's syndrome"], ["Aarskog's syndrome"]),
    (["Fever", "due to"], []),                      # a bare connective names nothing
    (["Constipation", "specified NEC"], []),        # a residual class names nothing a note says
    (["Neoplasm", "connective tissue NEC", "Note: For neoplasms of connective tissue"], []),
])
def test_natural_order(path, expected):
    assert natural_phrases(path) == expected


def test_site_paths_read_adjective_forms():
    assert natural_phrases(["abdomen, abdominal", "wall"], site=True) == ["abdominal wall"]
    assert natural_phrases(["palate", "soft"], site=True) == ["soft palate"]


def test_modifier_goes_in_front_of_the_last_term():
    assert natural_phrases(["Pain", "abdominal"], adjective="severe") == ["severe abdominal pain"]
    assert natural_phrases(["Hypertension, hypertensive"], adjective="essential") == ["essential hypertension"]


def test_paths_are_rebuilt_from_levels():
    entries = list(read_cdc_tsv(SAMPLE))
    paths = {e.path for e in entries}
    assert ("Diabetes, diabetic", "type 2", "with", "amyotrophy") in paths
    assert ("Neoplasm, neoplastic", "abdomen, abdominal", "wall") in paths
    assert ("Abnormal, abnormality, abnormalities", "auditory perception") in paths
    assert all(e.table in KEPT_TABLES for e in entries)


def test_reading_counts_skipped_and_malformed_rows():
    counts = Counter()
    list(read_cdc_tsv(SAMPLE, counts))
    assert counts["rows"] == len(SAMPLE.read_text().splitlines()) - 1
    assert counts["skipped_drug_table"] == 1
    assert counts["malformed"] == 1  # "Xerosis, generalized" at level 1 under "Pain"


def test_names_are_natural_phrases_of_the_codes(codes_of):
    assert codes_of["constipation"] == {"K59.00"}
    assert codes_of["chronic constipation"] == {"K59.09"}
    assert codes_of["type 2 diabetes"] == {"E11.9"}
    assert codes_of["type 2 diabetes with amyotrophy"] == {"E11.44"}
    assert codes_of["abdominal pain"] == {"R10.9"}
    assert codes_of["lower abdominal pain"] == {"R10.30"}
    assert codes_of["hypertensive kidney"] == {"I12.9"}
    assert not {"pain, abdominal", "diabetes, diabetic", "with", "specified constipation"} & set(codes_of)


def test_nonessential_modifiers(codes_of):
    assert codes_of["abasia"] == codes_of["hysterical abasia"] == {"F44.4"}
    assert codes_of["essential hypertension"] == codes_of["hypertension"] == {"I10"}
    assert codes_of["fever of unknown origin"] == codes_of["persistent fever"] == {"R50.9"}
    assert not [name for name in codes_of if "astasia" in name or "(" in name]
    assert "mellitus diabetes" not in codes_of  # noun modifiers give no variant


def test_see_entries_resolve_to_their_target(result, codes_of):
    assert codes_of["abdominalgia"] == {"R10.9"}  # see "Pain, abdominal"
    assert codes_of["liposarcoma"] == {"C49.9"}   # see "Neoplasm, connective tissue, malignant"
    assert "abandonment" not in codes_of           # see "Maltreatment": not in the fixture
    assert (result.counts["see_resolved"], result.counts["see_dropped"]) == (2, 1)


def test_dash_codes_and_categories_go_through_the_specificity_rules(result, codes_of):
    assert codes_of["abnormal auditory perception"] == {"H93.299"}   # H93.29-: the unspecified ear
    assert codes_of["metastasis to abdomen"] == {"C79.8"}            # C79.8-: three children, none unspecified
    assert (result.counts["dash_completed"], result.counts["dash_category"]) == (1, 1)


def test_neoplasm_table_names(codes_of):
    assert codes_of["malignant neoplasm of abdomen"] == codes_of["abdomen cancer"] == {"C76.2"}
    assert codes_of["secondary malignant neoplasm of abdomen"] == {"C79.8"}
    assert codes_of["benign neoplasm of abdomen"] == {"D36.7"}
    assert codes_of["malignant neoplasm of abdominal wall"] == {"C44.509"}
    assert codes_of["cancer"] == {"C80.1"}


def test_dropped_rows_are_counted(result, rules):
    assert result.counts["dropped_code_not_in_tabular"] == 1  # Z99.99
    assert result.counts["dropped_no_phrase"] == 1            # Constipation, specified NEC
    assert result.counts["headings_without_code"] == 3
    assert all(n.name_type == "index_term" for n in result.names)
    assert all(rules.is_valid(n.concept_key.removeprefix("ICD10CM:")) for n in result.names)


def test_converted_file_reads_back_the_same_entries(tmp_path):
    counts = convert_index(SAMPLE, tmp_path / "index.parquet", version="FY2099")
    entries, version = read_entries(tmp_path / "index.parquet")
    assert entries == list(read_cdc_tsv(SAMPLE))
    assert version == "FY2099"
    assert counts["kept"] == len(entries)


def test_unreadable_files_name_the_problem(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("concept_id\tname\tlevel\n")
    with pytest.raises(SourceError, match=r"bad\.tsv, line 1, field 'table': missing column"):
        list(read_cdc_tsv(bad))
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    with pytest.raises(SourceError, match="not an index file written by `clin-linker vocab convert-index`"):
        read_entries(other)


def test_source_kind_adds_names_to_the_tabular_codes():
    tabular, index = load_sources(["icd10cm", f"icd10cm-index={SAMPLE}"])
    assert (index.vocabulary_id, index.concepts, index.version) == ("ICD10CM", [], "unknown Alphabetic Index")
    known = {c.concept_key for c in tabular.concepts}
    assert index.names and all(n.concept_key in known for n in index.names)


def test_source_kind_needs_icd10cm_first():
    with pytest.raises(SourceError, match="list icd10cm .* before it"):
        load_sources([f"icd10cm-index={SAMPLE}"])


def test_packaged_index_is_shipped_with_its_attribution():
    entries, version = read_entries(PACKAGED_INDEX)
    assert version == "FY2025"
    assert len(entries) > 80_000 and {e.table for e in entries} == set(KEPT_TABLES)
    assert PACKAGED_INDEX.stat().st_size < 3_000_000
    notice = PACKAGED_INDEX.parent / "NOTICE"
    assert "ICD-10-CM FY2025 Index, CDC/NCHS (public domain)" in notice.read_text()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "clin_linker.ontologies"]
    for path in (PACKAGED_INDEX, notice):
        relative = path.relative_to(ROOT / "ontologies").as_posix()
        assert any(fnmatch(relative, p) for p in patterns), f"{relative} is not package data in pyproject.toml"
