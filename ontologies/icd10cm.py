"""ICD-10-CM from the CMS tabular XML (default: the copy shipped in PyPI ``simple-icd-10-cm``).

Why parse the XML ourselves instead of calling simple_icd_10_cm: the package keeps one global tree and
answers code by code; we need every code with its chapter, parent, inclusion terms and billable flag
in one pass, and the same parser must read a newer CMS ``icd10cm_tabular_YYYY.xml`` a user downloads.

What becomes a concept: every ``<diag>`` (categories and subcategories, never chapters or section
blocks) plus the 7th-character codes that ``<sevenChrDef>`` defines for leaf codes (S72.001A, ...),
which is how CMS and Athena count ICD-10-CM codes. The tabular cannot say that some extensions are
invalid for some codes (S06.1X7D: "death due to brain injury" only takes 7th character A), so a code
list filters the generated 7th-character codes when one is available (the package ships one).

Names: the description (preferred), ``<inclusionTerm>`` notes and the ``<includes>`` notes of codes
(I10 "high blood pressure"), both name_type "inclusion". Notes that cite other codes ("Conditions
classifiable to C15", "any condition in I50.- due to hypertension") are coding instructions, not
surface forms, and would attract unrelated mentions in retrieval: they are skipped. Chapter and block
notes are not names of any one code and are skipped too.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .errors import require_file, source_error
from .package_data import package_data_dir
from .records import Concept, Name, VocabularyPart, concept_key

VOCABULARY_ID = "ICD10CM"

#: Codes starting with these letters are in the chapters "External causes of morbidity (V00-Y99)" and
#: "Factors influencing health status (Z00-Z99)": they describe events and circumstances, not conditions.
_OBSERVATION_LETTERS = frozenset("VWXYZ")

#: A note that cites a code (``I50.-``, ``I51.4-I51.7``, "classifiable to C15") is an instruction, not a
#: name; "vitamin B12", "LGMD R12" or "E. coli O157" are names and must not match.
_CITES_CODE = re.compile(
    r"\b[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*-?|-[A-Z]\d[0-9A-Z])"
    r"|\b(?:to|in|under|listed|categories|category|except)\s+[A-Z]\d[0-9A-Z]\b"
)

_FILE_DATE = re.compile(r"([A-Za-z]+)-(\d{1,2})-(\d{4})")


@dataclass(frozen=True)
class _Context:
    """What a ``<diag>`` inherits from its ancestors."""

    chapter: str
    parent: str | None
    seven_chr: dict[str, str]


def default_paths() -> tuple[Path, Path | None]:
    """The tabular XML and code list shipped in simple-icd-10-cm (whatever release it carries)."""
    data = package_data_dir("simple_icd_10_cm", "simple-icd-10-cm==1.5.0")
    xmls = sorted(data.glob("icd10c*-tabular-*.xml"))
    if not xmls:
        raise source_error(data, "no icd10c*-tabular-*.xml in the simple-icd-10-cm package",
                           "reinstall simple-icd-10-cm==1.5.0 or pass the CMS tabular XML explicitly")
    lists = sorted(data.glob("code-list-*.txt"))
    return xmls[-1], (lists[-1] if lists else None)


def load_icd10cm(xml_path: Path | None = None, *, code_list_path: Path | None = None) -> VocabularyPart:
    """Read an ICD-10-CM tabular XML into a vocabulary part.

    ``code_list_path``: valid codes, one per line as the first token, dots optional (the package's
    ``code-list-*.txt`` or CMS ``icd10cm_codes_YYYY.txt``). It only filters generated 7th-character
    codes. With no ``xml_path`` the package's XML and code list are used.
    """
    if xml_path is None:
        xml_path, packaged_list = default_paths()
        code_list_path = code_list_path or packaged_list
    xml_path = require_file(Path(xml_path), "ICD-10-CM tabular XML")
    valid = _read_code_list(require_file(Path(code_list_path), "ICD-10-CM code list")) if code_list_path else None
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise source_error(xml_path, f"not well-formed XML ({exc})",
                           "pass the CMS tabular XML (icd10cm_tabular_YYYY.xml) unmodified",
                           line=exc.position[0]) from None
    if root.tag != "ICD10CM.tabular":
        raise source_error(xml_path, f"root element is <{root.tag}>, not <ICD10CM.tabular>",
                           "pass the tabular list XML, not the index or the drug/neoplasm table")
    part = VocabularyPart(VOCABULARY_ID, _version(root, xml_path), str(xml_path))
    for chapter in root.findall("chapter"):
        chapter_context = _Context(chapter=(chapter.findtext("name") or "").strip(), parent=None, seven_chr={})
        for section in chapter.findall("section"):
            for diag in section.findall("diag"):
                _add_diag(part, diag, chapter_context, valid)
    return part


def _version(root: ET.Element, xml_path: Path) -> str:
    """``FY2026 (April 1 2026)`` for the April update file; ``FY2026`` when the file name has no date."""
    fiscal_year = (root.findtext("version") or "").strip()
    version = f"FY{fiscal_year}" if fiscal_year else "unknown"
    match = _FILE_DATE.search(xml_path.name)
    return f"{version} ({match[1]} {match[2]} {match[3]})" if match else version


def _read_code_list(path: Path) -> set[str]:
    with path.open(encoding="utf-8-sig") as handle:
        return {line.split()[0].replace(".", "") for line in handle if line.strip()}


def _with_seven_chr(context: _Context, element: ET.Element) -> _Context:
    """The nearest ``<sevenChrDef>`` wins: a code's own definition replaces its ancestors'."""
    extensions = {e.get("char", ""): " ".join((e.text or "").split())
                  for e in element.findall("sevenChrDef/extension")}
    if not extensions:
        return context
    return _Context(context.chapter, context.parent, extensions)


def _add_diag(part: VocabularyPart, diag: ET.Element, context: _Context, valid: set[str] | None) -> None:
    code = (diag.findtext("name") or "").strip()
    description = " ".join((diag.findtext("desc") or "").split())
    if not code or not description:
        raise source_error(part.source, f"a <diag> under {context.parent or 'chapter ' + context.chapter} "
                           "has no <name> or <desc>", "pass the CMS tabular XML unmodified", field="diag")
    children = diag.findall("diag")
    context = _with_seven_chr(context, diag)
    extensions = _seven_chr_codes(code, context.seven_chr, valid) if not children else []
    billable = not children and not extensions
    part.concepts.append(_concept(code, description, context, billable))
    key = concept_key(VOCABULARY_ID, code)
    part.names.append(Name(key, description, "preferred"))
    part.names.extend(Name(key, text, "inclusion") for text in _inclusion_terms(diag))

    child_context = _Context(context.chapter, code, context.seven_chr)
    for child in children:
        _add_diag(part, child, child_context, valid)
    for extended, meaning in extensions:
        name = f"{description}, {meaning}"
        part.concepts.append(_concept(extended, name, child_context, billable=True))
        part.names.append(Name(concept_key(VOCABULARY_ID, extended), name, "preferred"))


def _seven_chr_codes(code: str, seven_chr: dict[str, str], valid: set[str] | None) -> list[tuple[str, str]]:
    """7th-character codes of a leaf: pad with the placeholder X to 6 characters, then add the 7th."""
    if not seven_chr:
        return []
    stem = code if "." in code else code + "."
    stem = stem.ljust(7, "X")
    codes = [(stem + char, meaning) for char, meaning in seven_chr.items()]
    return [(c, m) for c, m in codes if valid is None or c.replace(".", "") in valid]


def _inclusion_terms(diag: ET.Element) -> list[str]:
    notes = diag.findall("inclusionTerm/note") + diag.findall("includes/note")
    terms = (" ".join((n.text or "").split()) for n in notes)
    return [t for t in terms if t and not _CITES_CODE.search(t)]


def _concept(code: str, name: str, context: _Context, billable: bool) -> Concept:
    return Concept(
        vocabulary_id=VOCABULARY_ID,
        concept_code=code,
        concept_name=name,
        domain_id="Observation" if code[0] in _OBSERVATION_LETTERS else "Condition",
        concept_class_id=concept_class(code, billable),
        standard_concept=None,
        attributes={"billable": billable, "chapter": context.chapter, "parent": context.parent},
    )


def concept_class(code: str, billable: bool) -> str:
    """Athena's ICD10CM concept classes: ``4-char billing code``, ``3-char nonbill code``, ..."""
    length = len(code.replace(".", ""))
    return f"{length}-char {'billing' if billable else 'nonbill'} code"
