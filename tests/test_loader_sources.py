"""The source registry: spec parsing, errors, and loading through it."""
from __future__ import annotations

from pathlib import Path

import pytest
from athena_fixture import write_athena_export

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.sources import DEFAULT_SOURCES, SOURCES, load_sources, parse_spec

FIXTURES = Path(__file__).parent / "fixtures"


def test_kinds_and_defaults():
    assert set(SOURCES) == {"icd10cm", "icd10cm-index", "hpo", "icd10pcs", "snomed-gps", "athena", "snomed-rf2",
                            "icf-claml", "custom"}
    assert DEFAULT_SOURCES == ["icd10cm", "icd10cm-index", "hpo", "icd10pcs", "snomed-gps"]


@pytest.mark.parametrize(("spec", "kind", "option", "path"), [
    ("icd10cm", "icd10cm", None, None),
    ("hpo=/data/hp.obo", "hpo", None, Path("/data/hp.obo")),
    ("athena:SNOMED,ICD10CM=/v", "athena", "SNOMED,ICD10CM", Path("/v")),
    ("custom:MYVOCAB=C:/sites/a=b.csv", "custom", "MYVOCAB", Path("C:/sites/a=b.csv")),
])
def test_parse_spec(spec, kind, option, path):
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.option, parsed.path) == (kind, option, path)


@pytest.mark.parametrize(("spec", "message"), [
    ("mesh=/x", r"unknown vocabulary source 'mesh'.*"
                r"valid kinds: icd10cm, icd10cm-index, hpo, icd10pcs, snomed-gps, athena, snomed-rf2, icf-claml, custom"),
    ("custom=/x.csv", r"custom needs the vocabulary id, e\.g\. custom:MYVOCAB=PATH"),
    ("athena", r"athena needs a path"),
    ("hpo:en=/x", r"hpo takes no ':OPTION'"),
])
def test_bad_specs(spec, message):
    with pytest.raises(SourceError, match=message):
        load_sources([spec])


def test_all_specs_are_checked_before_loading():
    with pytest.raises(SourceError, match="unknown vocabulary source"):
        load_sources(["hpo", "nope"])  # fails fast, without reading hp.obo first


def test_load_fixture_sources(tmp_path):
    athena = write_athena_export(tmp_path / "athena")
    parts = load_sources([
        f"athena:ICD10CM,NDC={athena}",
        f"snomed-rf2={FIXTURES / 'snomed_rf2'}",
        f"icf-claml={FIXTURES / 'icf_claml' / 'icf_sample.xml'}",
        f"custom:SITE={FIXTURES / 'custom' / 'site_problems.jsonl'}",
    ])
    assert [p.vocabulary_id for p in parts] == ["ICD10CM", "NDC", "SNOMED", "ICF", "SITE"]


def test_default_sources_build_the_embedded_store(tmp_path):
    from clin_linker.ontologies.store import ConceptStore, build_store

    manifest = build_store(load_sources(DEFAULT_SOURCES), tmp_path)
    # the Alphabetic Index part adds names to the Tabular List's codes, no concept of its own
    # ICD-10-PCS: the tables' part, then (fallback parts last) its GEMs part and the SNOMED GPS
    assert [v["vocabulary_id"] for v in manifest["vocabularies"]] == ["ICD10CM", "ICD10CM", "HPO", "ICD10PCS",
                                                                      "ICD10PCS", "SNOMED"]
    assert manifest["counts"]["concepts"] == 98_186 + 19_034 + 78_858 + 7_683 + 26_158
    assert manifest["counts"]["local_ids"] == manifest["counts"]["concepts"]
    store = ConceptStore(tmp_path)
    assert store["ICD10CM:E11.9"].concept_name == "Type 2 diabetes mellitus without complications"
    assert store.standard_concept_id("HPO:HP:0001250") == 0  # local ids are never standard
