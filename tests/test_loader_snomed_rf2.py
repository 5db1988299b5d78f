"""SNOMED CT RF2 loader on a hand-written Snapshot release (tests/fixtures/snomed_rf2)."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.snomed_rf2 import GB_ENGLISH, load_snomed_rf2

RELEASE = Path(__file__).parent / "fixtures" / "snomed_rf2"


@pytest.fixture(scope="module")
def part():
    return load_snomed_rf2(RELEASE)


def _names(part, code):
    return [(n.name, n.name_type) for n in part.names if n.concept_key == f"SNOMED:{code}"]


def _concept(part, code):
    return next(c for c in part.concepts if c.concept_code == code)


def test_active_concepts_only(part):
    assert part.vocabulary_id == "SNOMED"
    assert part.version == "20250101"
    codes = {c.concept_code for c in part.concepts}
    assert codes == {"22298006", "38341003", "271737000", "80146002", "387517004", "271649006", "80891009",
                     "266257000"}
    assert "155296003" not in codes  # inactive concept


def test_preferred_term_fsn_and_synonyms(part):
    mi = _concept(part, "22298006")
    assert mi.concept_name == "Myocardial infarction"
    assert mi.attributes == {"semantic_tag": "disorder", "fsn": "Myocardial infarction (disorder)"}
    assert (mi.domain_id, mi.concept_class_id, mi.standard_concept) == ("Condition", "Disorder", "S")
    assert mi.valid_start_date == dt.date(2002, 1, 31)
    names = _names(part, "22298006")
    assert names[0] == ("Myocardial infarction", "preferred")
    assert ("Heart attack", "synonym") in names
    assert not any("obsolete" in n for n, _ in names)  # inactive description


def test_preferred_term_differs_from_fsn(part):
    appendectomy = _concept(part, "80146002")
    assert appendectomy.concept_name == "Appendectomy"  # US preferred, not the FSN
    assert ("Excision of appendix", "synonym") in _names(part, "80146002")
    assert ("Appendicectomy", "synonym") in _names(part, "80146002")
    assert (appendectomy.domain_id, appendectomy.concept_class_id) == ("Procedure", "Procedure")


def test_retired_refset_member_does_not_count(part):
    assert _names(part, "22298006")[0] == ("Myocardial infarction", "preferred")  # not "Cardiac infarction"


def test_dialect_order(part):
    assert _concept(part, "271737000").concept_name == "Anemia"
    gb = load_snomed_rf2(RELEASE, dialects=(GB_ENGLISH,))
    assert _concept(gb, "271737000").concept_name == "Anaemia"
    assert _concept(gb, "387517004").concept_name == "Paracetamol"


def test_no_refset_entry_falls_back_to_fsn(part):
    tia = _concept(part, "266257000")
    assert tia.concept_name == "Transient ischemic attack"
    assert _names(part, "266257000") == [("Transient ischemic attack", "preferred"),
                                         ("TIA - Transient ischaemic attack", "synonym")]
    assert (tia.domain_id, tia.concept_class_id) == ("Condition", "Clinical Finding")


def test_domains_and_standard_flags(part):
    expected = {
        "387517004": ("Drug", "Substance", None),
        "271649006": ("Measurement", "Observable Entity", "S"),
        "80891009": ("Spec Anatomic Site", "Body Structure", None),
    }
    for code, (domain, concept_class, standard) in expected.items():
        c = _concept(part, code)
        assert (c.domain_id, c.concept_class_id, c.standard_concept) == (domain, concept_class, standard)


def test_without_language_refset(tmp_path):
    release = shutil.copytree(RELEASE, tmp_path / "release")
    for refset in release.rglob("der2_cRefset_Language*"):
        refset.unlink()
    part = load_snomed_rf2(release)
    assert _concept(part, "80146002").concept_name == "Excision of appendix"


def test_not_a_release(tmp_path):
    with pytest.raises(SourceError, match=r"no sct2_Concept_Snapshot\*\.txt below this folder"):
        load_snomed_rf2(tmp_path)


def test_short_row_names_line(tmp_path):
    release = shutil.copytree(RELEASE, tmp_path / "release")
    (concept_file,) = release.rglob("sct2_Concept_Snapshot*")
    concept_file.write_text(concept_file.read_text().replace("80146002\t20150731\t1\t", "80146002\t20150731\t"))
    with pytest.raises(SourceError, match=r"sct2_Concept_Snapshot_INT_20250101\.txt, line 5: 4 fields"):
        load_snomed_rf2(release)
