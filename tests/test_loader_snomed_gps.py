"""The SNOMED CT Global Patient Set source: conversion from the GPS table + Mondo exact matches, the semantic-tag
domain map, names joined through exact cross-references only, and a user's Athena SNOMED taking precedence."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from athena_fixture import write_athena_export

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.records import Name, VocabularyPart, Xref
from clin_linker.ontologies.snomed_gps import PACKAGED_GPS, convert_gps, load_snomed_gps
from clin_linker.ontologies.sources import DEFAULT_SOURCES, load_sources
from clin_linker.ontologies.store import ConceptStore, build_store

#: The GPS table as the shared data ships it (concept_id, name, name_type, semantic_tag, fsn), one row per tag kind.
GPS_ROWS = [
    ("44054006", "Diabetes mellitus type 2", "disorder"),
    ("271737000", "Anemia", "finding"),
    ("80146002", "Excision of appendix", "procedure"),
    ("387517004", "Paracetamol", "substance"),
    ("364075005", "Heart rate", "observable entity"),
    ("80891009", "Heart structure", "body structure"),
    ("3092008", "Staphylococcus aureus", "organism"),
]
MONDO_ROWS = [
    ("MONDO:0005148", "type 2 diabetes mellitus", "SNOMEDCT:44054006", "skos:exactMatch"),
    ("MONDO:0002280", "anemia (disease)", "SNOMEDCT:271737000", "skos:closeMatch"),  # not exact: not a name
    ("MONDO:0000001", "disease", "SNOMEDCT:64572001", "skos:exactMatch"),  # not a GPS id: ignored
]


@pytest.fixture()
def gps_file(tmp_path):
    gps = tmp_path / "snomed_gps_fsn.tsv"
    gps.write_text("concept_id\tname\tname_type\tsemantic_tag\tfsn\n" + "".join(
        f"SNOMEDCT:{code}\t{name}\tfsn_without_tag\t{tag}\t{name} ({tag})\n" for code, name, tag in GPS_ROWS))
    mondo = tmp_path / "mondo_xrefs.tsv"
    mondo.write_text("concept_id\tlabel\txref_id\tpredicate\txref_label\tmapping_justification\n" + "".join(
        f"{m}\t{label}\t{xref}\t{predicate}\t\tsemapv:ManualMappingCuration\n" for m, label, xref, predicate in MONDO_ROWS))
    out = tmp_path / "gps.parquet"
    assert convert_gps(gps, mondo, out, version="test") == {"concepts": 7, "with_mondo_label": 1}
    return out


def _hpo_part() -> VocabularyPart:
    key = "HPO:HP:0005978"
    return VocabularyPart("HPO", "test", "hp.obo", names=[
        Name(key, "Type II diabetes mellitus", "preferred"), Name(key, "Type 2 diabetes", "layperson"),
        Name(key, "NIDDM", "abbreviation")],  # an abbreviation does not travel: too ambiguous on its own
        xrefs=[Xref(key, "SNOMED:44054006", "xref"), Xref(key, "UMLS:C0011860", "xref")])


def test_domains_follow_the_semantic_tag(gps_file):
    part = load_snomed_gps(gps_file, [])
    got = {c.concept_code: (c.domain_id, c.concept_class_id, c.standard_concept) for c in part.concepts}
    assert got == {
        "44054006": ("Condition", "Disorder", "S"), "271737000": ("Condition", "Clinical Finding", "S"),
        "80146002": ("Procedure", "Procedure", "S"), "387517004": ("Drug", "Substance", None),
        "364075005": ("Measurement", "Observable Entity", "S"),
        "80891009": ("Spec Anatomic Site", "Body Structure", None), "3092008": ("Observation", "Organism", "S")}
    assert part.vocabulary_id == "SNOMED" and part.fallback and part.version == "Global Patient Set test"
    fsn = {c.concept_code: c.attributes["fsn"] for c in part.concepts}
    assert fsn["44054006"] == "Diabetes mellitus type 2 (disorder)"  # sorted by code in the file, not read order


def test_names_come_from_the_fsn_and_exact_cross_references_only(gps_file):
    names = load_snomed_gps(gps_file, [_hpo_part()]).names
    assert [(n.name, n.name_type) for n in names if n.concept_key == "SNOMED:44054006"] == [
        ("Diabetes mellitus type 2", "preferred"), ("type 2 diabetes mellitus", "synonym"),
        ("Type II diabetes mellitus", "synonym"), ("Type 2 diabetes", "layperson")]
    assert [n.name for n in names if n.concept_key == "SNOMED:271737000"] == ["Anemia"]  # closeMatch: no name


def test_an_athena_snomed_concept_replaces_the_gps_one_whatever_the_order(gps_file, tmp_path):
    athena = write_athena_export(tmp_path / "athena")
    parts = load_sources(["snomed-gps", f"athena:SNOMED={athena}"])
    build_store(parts, tmp_path / "gps_first")
    build_store(parts[::-1], tmp_path / "athena_first")
    stores = [ConceptStore(tmp_path / "gps_first"), ConceptStore(tmp_path / "athena_first")]
    for store in stores:
        cabg = store["SNOMED:232717009"]  # in the GPS and in Eunomia's real vocabulary
        assert (cabg.omop_concept_id, cabg.concept_name, cabg.domain_id, cabg.standard_concept) == (
            4336464, "Coronary artery bypass graft", "Procedure", "S")
        names = store.names().to_pylist()
        others = [n for n in names if n["concept_key"] == "SNOMED:232717009"
                  and n["name"] != "Coronary artery bypass graft"]
        assert others and all(n["name_type"] == "synonym" for n in others)  # the GPS FSN stays, as a synonym
        assert store["SNOMED:44054006"].omop_concept_id >= 2_000_000_000  # GPS only: a local id
    assert stores[0].version == stores[1].version


def test_the_packaged_gps_is_in_the_default_store():
    assert "snomed-gps" in DEFAULT_SOURCES and DEFAULT_SOURCES.index("hpo") < DEFAULT_SOURCES.index("snomed-gps")
    part = load_snomed_gps(None, load_sources(["hpo"]))
    assert len(part.concepts) == 26158
    names = {n.name.casefold() for n in part.names if n.concept_key == "SNOMED:44054006"}
    assert {"diabetes mellitus type 2", "type 2 diabetes mellitus"} <= names
    metadata = json.loads(pq.read_schema(PACKAGED_GPS).metadata[b"clin_linker.snomed_gps"])
    assert "CC BY 4.0" in metadata["attribution"]


def test_bad_inputs_name_the_file_and_the_fix(tmp_path):
    gps = tmp_path / "gps.tsv"
    gps.write_text("concept_id\tfsn\nSCTID:123\tSomething (finding)\n")
    mondo = tmp_path / "mondo.tsv"
    mondo.write_text("concept_id\tlabel\txref_id\tpredicate\n")
    with pytest.raises(SourceError, match=r"gps.tsv.*line 2.*SNOMEDCT:<id>"):
        convert_gps(gps, mondo, tmp_path / "out.parquet", version="x")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"code": ["1"]}), other)
    with pytest.raises(SourceError, match="convert-gps"):
        load_snomed_gps(other, [])


def test_target_snomed_codes_a_note_with_the_default_store(default_index):
    from clin_linker.pipeline.build import build_pipeline

    nlp = build_pipeline(str(default_index), ner_config={"threads": 1}, threads=1, targets=["SNOMED"])
    doc = nlp("Patient with type 2 diabetes mellitus and essential hypertension.")
    coded = {e.text: e._.concept for e in doc.ents}
    assert coded == {"type 2 diabetes mellitus": "SNOMED:44054006", "essential hypertension": "SNOMED:59621000"}
