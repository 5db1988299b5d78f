"""ICF from WHO's ClaML XML (the user's copy: WHO does not allow redistributing the full ICF).

ClaML is WHO's generic classification format: ``<Class code=… kind=…>`` elements with ``<Rubric>``s
holding ``<Label xml:lang=…>`` texts that may contain markup (``<Reference>``, ``<Fragment>``, …).

Mapping to the store:
- only classes of kind "category" become concepts (b110, d450, b28010…); components, chapters and
  blocks group categories and would only add noise to retrieval;
- the "preferred" rubric is the preferred name; "inclusion" rubrics become names of type "inclusion".
  An ICF inclusion is one label listing several things separated by ";" ("walking short or long
  distances; walking on different surfaces"), so it is split there into separate surface forms;
- definitions, exclusions and coding hints are not names of the category and are skipped;
- all categories are Observation-domain, concept class "ICF Category"; the component (b, s, d, e) and
  the parent category go into attributes;
- with English labels, the therapy wording of our own list ``data/icf_therapy_terms.tsv`` ("stand pivot transfer",
  "wheelchair propulsion", "stair negotiation": how rehabilitation notes say it, far from WHO's titles) is added as
  synonyms of the categories the file holds. The list is ours (no ICF text), so it ships; it names codes only.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .errors import require_file, source_error
from .records import Concept, Name, VocabularyPart, concept_key
from .tsv import read_tsv

VOCABULARY_ID = "ICF"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_COMPONENTS = {"b": "Body Functions", "s": "Body Structures", "d": "Activities and Participation",
               "e": "Environmental Factors"}
_FIX = "pass WHO's ICF ClaML file unmodified"
THERAPY_TERMS = Path(__file__).parent / "data" / "icf_therapy_terms.tsv"


def load_icf_claml(path: Path, *, lang: str = "en") -> VocabularyPart:
    """Read the categories of an ICF ClaML file, with labels in ``lang``."""
    path = require_file(Path(path), "ICF ClaML file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise source_error(path, f"not well-formed XML ({exc})", _FIX, line=exc.position[0]) from None
    if root.tag != "ClaML":
        raise source_error(path, f"root element is <{root.tag}>, not <ClaML>", _FIX)
    title = root.find("Title")
    version = (title.get("version") or title.get("date") or "unknown") if title is not None else "unknown"
    part = VocabularyPart(VOCABULARY_ID, version, str(path))
    classes = root.findall("Class")
    kinds = {c.get("code"): c.get("kind") for c in classes}
    for element in classes:
        if element.get("kind") == "category":
            _add_category(part, element, kinds, lang)
    if not part.concepts:
        raise source_error(path, 'no <Class kind="category">',
                           _FIX + " (a ClaML of the ICF, not of another classification)")
    if lang == "en":
        _add_therapy_terms(part)
    return part


def _add_therapy_terms(part: VocabularyPart) -> None:
    """Our therapy wording as synonyms of the categories ``part`` holds (codes the user's file lacks are skipped)."""
    codes = {c.concept_code for c in part.concepts}
    for _, row in read_tsv(THERAPY_TERMS, ("code", "name"), "the packaged therapy term list is damaged: reinstall"):
        if row["code"] in codes:
            part.names.append(Name(concept_key(VOCABULARY_ID, row["code"]), row["name"], "synonym"))


def _labels(element: ET.Element, rubric_kind: str, lang: str) -> list[str]:
    """Whitespace-normalized texts of the rubrics of one kind, in ``lang`` (or without a language)."""
    texts = []
    for rubric in element.findall("Rubric"):
        if rubric.get("kind") != rubric_kind:
            continue
        for label in rubric.findall("Label"):
            if label.get(_XML_LANG, lang) == lang:
                text = " ".join("".join(label.itertext()).split())
                if text:
                    texts.append(text)
    return texts


def _add_category(part: VocabularyPart, element: ET.Element, kinds: dict[str | None, str | None],
                  lang: str) -> None:
    """ElementTree keeps no line numbers, so errors name the class code instead."""
    code = (element.get("code") or "").strip()
    if not code:
        raise source_error(part.source, 'a <Class kind="category"> has no code', _FIX, field="code")
    preferred = _labels(element, "preferred", lang)
    if not preferred:
        raise source_error(part.source, f"category {code} has no preferred label in {lang!r}",
                           f"check that lang={lang!r} matches the file's xml:lang labels", field="Rubric")
    superclass = element.find("SuperClass")
    parent = superclass.get("code") if superclass is not None else None
    part.concepts.append(Concept(
        vocabulary_id=VOCABULARY_ID,
        concept_code=code,
        concept_name=preferred[0],
        domain_id="Observation",
        concept_class_id="ICF Category",
        standard_concept=None,
        attributes={"component": _COMPONENTS.get(code[0], code[0]),
                    "parent": parent if kinds.get(parent) == "category" else None},
    ))
    key = concept_key(VOCABULARY_ID, code)
    part.names.append(Name(key, preferred[0], "preferred"))
    for inclusion in _labels(element, "inclusion", lang):
        part.names.extend(Name(key, term.strip(), "inclusion") for term in inclusion.split(";") if term.strip())
