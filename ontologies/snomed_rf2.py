"""SNOMED CT from an RF2 Snapshot release (the user's licensed copy; nothing of SNOMED is shipped).

RF2 files are TAB-separated with a header row and no quoting. Only the Snapshot is read: it holds the
current state of every component, so "active" can be read straight off each row.

Mapping to the store:
- active concepts only; active descriptions only, in one language (``languageCode``, default "en");
- the FSN gives the semantic tag (text in the last parentheses);
- the preferred name, and the concept_name as in Athena (concept 196456 "Gallstone", FSN "Gallbladder
  calculus (disorder)"), is the synonym the language refset marks preferred (US English first, then GB
  English); without a refset it is the FSN without its tag. The FSN without its tag and every other
  active synonym are kept as synonyms (GB spellings such as "anaemia" included: notes come from both
  sides of the Atlantic);
- domain and concept class follow the semantic tag the way Athena does (``finding`` → Condition,
  "Clinical Finding"); standard_concept "S" for the domains SNOMED is standard for in OMOP
  (Condition, Procedure, Measurement, Observation, Device). Drugs (RxNorm is standard) and body
  structures (Spec Anatomic Site) stay non-standard.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SourceError, require_dir, source_error
from .records import Concept, Name, VocabularyPart, concept_key
from .tsv import read_tsv

VOCABULARY_ID = "SNOMED"
FSN = "900000000000003001"
SYNONYM = "900000000000013009"
PREFERRED = "900000000000548007"
US_ENGLISH = "900000000000509007"
GB_ENGLISH = "900000000000508004"

CONCEPT_COLUMNS = ("id", "effectiveTime", "active")
DESCRIPTION_COLUMNS = ("id", "active", "conceptId", "languageCode", "typeId", "term")
LANGUAGE_COLUMNS = ("active", "refsetId", "referencedComponentId", "acceptabilityId")

#: semantic tag → (domain_id, concept_class_id) as Athena assigns them; unknown tags → Observation.
_BY_TAG = {
    "disorder": ("Condition", "Disorder"),
    "finding": ("Condition", "Clinical Finding"),
    "procedure": ("Procedure", "Procedure"),
    "regime/therapy": ("Procedure", "Regime/Therapy"),
    "substance": ("Drug", "Substance"),
    "product": ("Drug", "Pharma/Biol Product"),
    "medicinal product": ("Drug", "Pharma/Biol Product"),
    "medicinal product form": ("Drug", "Pharma/Biol Product"),
    "clinical drug": ("Drug", "Clinical Drug"),
    "observable entity": ("Measurement", "Observable Entity"),
    "body structure": ("Spec Anatomic Site", "Body Structure"),
    "cell structure": ("Spec Anatomic Site", "Body Structure"),
    "morphologic abnormality": ("Observation", "Morph Abnormality"),
    "physical object": ("Device", "Physical Object"),
    "situation": ("Observation", "Context-dependent"),
    "event": ("Observation", "Event"),
    "qualifier value": ("Observation", "Qualifier Value"),
    "organism": ("Observation", "Organism"),
    "specimen": ("Observation", "Specimen"),
    "assessment scale": ("Observation", "Staging / Scales"),
    "staging scale": ("Observation", "Staging / Scales"),
    "tumor staging": ("Observation", "Staging / Scales"),
    "social concept": ("Observation", "Social Context"),
    "record artifact": ("Observation", "Record Artifact"),
    "physical force": ("Observation", "Physical Force"),
    "environment / location": ("Observation", "Location"),
    "attribute": ("Observation", "Attribute"),
}
_STANDARD_DOMAINS = frozenset({"Condition", "Procedure", "Measurement", "Observation", "Device"})
_SEMANTIC_TAG = re.compile(r"^(.*\S)\s*\(([^()]+)\)\s*$")
_RELEASE_DATE = re.compile(r"_(\d{8})\.txt$")
_FIX = "pass the folder of an unpacked RF2 release (its Snapshot files are used as SNOMED ships them)"


@dataclass
class _Descriptions:
    """The active descriptions of one concept."""

    fsn: str = ""
    synonyms: list[tuple[str, str]] = field(default_factory=list)  # (description id, term), file order


def load_snomed_rf2(
    directory: Path, *, language: str = "en", dialects: tuple[str, ...] = (US_ENGLISH, GB_ENGLISH)
) -> VocabularyPart:
    """Read an RF2 Snapshot folder (searched recursively); ``dialects`` are language refsets, best first."""
    directory = require_dir(Path(directory), "SNOMED CT RF2 release")
    concept_file = _one(directory, "sct2_Concept_Snapshot*.txt")
    description_files = _all(directory, "sct2_Description_Snapshot*.txt")
    language_files = sorted(directory.rglob("der2_cRefset_LanguageSnapshot*.txt"))
    concepts = _active_concepts(concept_file)
    descriptions = _descriptions(description_files, concepts, language)
    preferred = _preferred_ids(language_files, dialects)
    match = _RELEASE_DATE.search(concept_file.name)
    part = VocabularyPart(VOCABULARY_ID, match[1] if match else "unknown", str(directory))
    for concept_id, effective in concepts.items():
        found = descriptions.get(concept_id)
        if found is None or not found.fsn:
            continue  # a concept without an active FSN in this language has nothing to link to
        _add_concept(part, concept_id, effective, found, preferred)
    return part


def _one(directory: Path, pattern: str) -> Path:
    found = _all(directory, pattern)
    if len(found) > 1:
        raise SourceError(f"{directory}: {len(found)} files match {pattern} ({', '.join(p.name for p in found)}); "
                          "pass the folder of one release")
    return found[0]


def _all(directory: Path, pattern: str) -> list[Path]:
    found = sorted(directory.rglob(pattern))
    if not found:
        raise SourceError(f"{directory}: no {pattern} below this folder; {_FIX}")
    return found


def _active_concepts(path: Path) -> dict[str, dt.date]:
    """``{concept id: effectiveTime}`` of active concepts."""
    concepts: dict[str, dt.date] = {}
    for line, row in read_tsv(path, CONCEPT_COLUMNS, _FIX):
        if row["active"] != "1":
            continue
        try:
            concepts[row["id"]] = dt.date.fromisoformat(row["effectiveTime"])
        except ValueError:
            raise source_error(path, f"{row['effectiveTime']!r} is not a YYYYMMDD date", _FIX,
                               line=line, field="effectiveTime") from None
    return concepts


def _descriptions(paths: list[Path], concepts: dict[str, dt.date], language: str) -> dict[str, _Descriptions]:
    found: dict[str, _Descriptions] = {}
    for path in paths:
        for _, row in read_tsv(path, DESCRIPTION_COLUMNS, _FIX):
            if row["active"] != "1" or row["languageCode"] != language or row["conceptId"] not in concepts:
                continue
            entry = found.setdefault(row["conceptId"], _Descriptions())
            if row["typeId"] == FSN:
                entry.fsn = row["term"]
            elif row["typeId"] == SYNONYM:
                entry.synonyms.append((row["id"], row["term"]))
    return found


def _preferred_ids(paths: list[Path], dialects: tuple[str, ...]) -> dict[str, set[str]]:
    """``{refset id: description ids it marks preferred}`` for the wanted dialects."""
    preferred: dict[str, set[str]] = {d: set() for d in dialects}
    for path in paths:
        for _, row in read_tsv(path, LANGUAGE_COLUMNS, _FIX):
            if row["active"] == "1" and row["acceptabilityId"] == PREFERRED and row["refsetId"] in preferred:
                preferred[row["refsetId"]].add(row["referencedComponentId"])
    return preferred


def tag_domain(tag: str) -> tuple[str, str, str | None]:
    """(domain_id, concept_class_id, standard_concept) of a SNOMED semantic tag, as Athena assigns them; shared by
    every SNOMED loader so an RF2 release and the packaged Global Patient Set put a concept in the same domain."""
    domain, concept_class = _BY_TAG.get(tag, ("Observation", tag.title() or "Unknown"))
    return domain, concept_class, "S" if domain in _STANDARD_DOMAINS else None


def split_fsn(fsn: str) -> tuple[str, str]:
    """``Myocardial infarction (disorder)`` → (``Myocardial infarction``, ``disorder``)."""
    match = _SEMANTIC_TAG.match(fsn)
    return (match[1], match[2]) if match else (fsn, "")


def _add_concept(part: VocabularyPart, concept_id: str, effective: dt.date, found: _Descriptions,
                 preferred: dict[str, set[str]]) -> None:
    fsn_name, tag = split_fsn(found.fsn)
    domain, concept_class, standard = tag_domain(tag)
    name = _preferred_term(found.synonyms, preferred) or fsn_name
    part.concepts.append(Concept(
        vocabulary_id=VOCABULARY_ID,
        concept_code=concept_id,
        concept_name=name,
        domain_id=domain,
        concept_class_id=concept_class,
        standard_concept=standard,
        valid_start_date=effective,
        attributes={"semantic_tag": tag, "fsn": found.fsn},
    ))
    key = concept_key(VOCABULARY_ID, concept_id)
    part.names.append(Name(key, name, "preferred"))
    if fsn_name != name:
        part.names.append(Name(key, fsn_name, "synonym"))
    part.names.extend(Name(key, term, "synonym") for _, term in found.synonyms)


def _preferred_term(synonyms: list[tuple[str, str]], preferred: dict[str, set[str]]) -> str | None:
    """The synonym the first dialect (in order) marks preferred."""
    for marked in preferred.values():
        for description_id, term in synonyms:
            if description_id in marked:
                return term
    return None
