"""Custom vocabulary loader (CSV and JSONL) and its input validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from clin_linker.ontologies.custom_vocab import load_custom
from clin_linker.ontologies.errors import SourceError

FIXTURES = Path(__file__).parent / "fixtures" / "custom"


@pytest.mark.parametrize("file_name", ["site_problems.csv", "site_problems.jsonl"])
def test_csv_and_jsonl_give_the_same_part(file_name):
    part = load_custom(FIXTURES / file_name, "SITE_PROB")
    assert part.vocabulary_id == "SITE_PROB"
    assert [(c.concept_key, c.concept_name, c.domain_id, c.concept_class_id, c.standard_concept, c.omop_concept_id)
            for c in part.concepts] == [
        ("SITE_PROB:LP001", "Frequent falls", "Observation", "Problem", None, None),
        ("SITE_PROB:LP002", "Chronic pain, lower back", "Condition", "Custom", None, None),
        ("SITE_PROB:LP003", "Home oxygen therapy", "Procedure", "Custom", None, None),
    ]
    assert [(n.concept_key, n.name, n.name_type) for n in part.names] == [
        ("SITE_PROB:LP001", "Frequent falls", "preferred"),
        ("SITE_PROB:LP001", "recurrent falls", "synonym"),
        ("SITE_PROB:LP001", "falls at home", "synonym"),
        ("SITE_PROB:LP002", "Chronic pain, lower back", "preferred"),
        ("SITE_PROB:LP002", "LBP", "synonym"),
        ("SITE_PROB:LP002", "lumbago", "synonym"),
        ("SITE_PROB:LP003", "Home oxygen therapy", "preferred"),
    ]


def test_default_domain():
    part = load_custom(FIXTURES / "site_problems.csv", "SITE", default_domain="Observation")
    assert part.concepts[1].domain_id == "Observation"


def test_missing_name_names_line_and_field():
    with pytest.raises(SourceError, match=r"missing_name\.csv, line 3, field 'name': missing name"):
        load_custom(FIXTURES / "missing_name.csv", "SITE")


def test_duplicate_code_names_both_lines():
    with pytest.raises(SourceError, match=r"duplicate_code\.jsonl, line 3, field 'code': code 'LP001' is already "
                                          r"defined on line 1; give each code one row"):
        load_custom(FIXTURES / "duplicate_code.jsonl", "SITE")


def test_unknown_domain():
    with pytest.raises(SourceError, match=r"unknown_domain\.csv, line 2, field 'domain': domain 'Conditions'.*"
                                          r"use one of Condition, Observation"):
        load_custom(FIXTURES / "unknown_domain.csv", "SITE")


@pytest.mark.parametrize("vocabulary_id", ["", "1SITE", "SITE:X", "A" * 21, "my vocab"])
def test_vocabulary_id_is_validated(vocabulary_id):
    with pytest.raises(SourceError, match="vocabulary id .* is not valid"):
        load_custom(FIXTURES / "site_problems.csv", vocabulary_id)


def test_vocabulary_id_of_twenty_characters_is_fine():
    assert load_custom(FIXTURES / "site_problems.csv", "A" * 20).vocabulary_id == "A" * 20


def test_unknown_column(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("code,name,synonym\nX1,Thing,other\n")
    with pytest.raises(SourceError, match=r"v\.csv, line 1, field 'synonym': unknown column.*use only the columns"):
        load_custom(path, "SITE")


def test_bad_json_line(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text('{"code": "X1", "name": "Thing"}\n{"code": "X2", "name": }\n')
    with pytest.raises(SourceError, match=r"v\.jsonl, line 2: not valid JSON"):
        load_custom(path, "SITE")


def test_synonyms_must_be_a_list(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text('{"code": "X1", "name": "Thing", "synonyms": "other|names"}\n')
    with pytest.raises(SourceError, match=r"line 1, field 'synonyms': synonyms is not a list"):
        load_custom(path, "SITE")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text("code\tname\n")
    with pytest.raises(SourceError, match=r"unknown suffix '\.tsv'; name the file \.csv, \.jsonl or \.ndjson"):
        load_custom(path, "SITE")
