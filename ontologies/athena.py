"""OMOP vocabularies from an Athena download (CONCEPT.csv, CONCEPT_SYNONYM.csv, CONCEPT_RELATIONSHIP.csv).

Athena is the only source of *real* OMOP concept ids and curated "Maps to" links, so this is the loader
that makes NOTE_NLP rows join to a site's CDM. Its files are TAB-separated with a lowercase header, no
quoting (names contain bare ``"``), dates as YYYYMMDD, and a full download holds millions of rows, so
they are streamed with ``csv.QUOTE_NONE`` and filtered while read.

Choices:
- one :class:`VocabularyPart` per vocabulary_id, so the manifest records each vocabulary's version
  (from VOCABULARY.csv when present);
- deprecated/updated concepts (non-empty ``invalid_reason``) are skipped by default: a linker must not
  propose them. ``include_invalid=True`` keeps them with their invalid_reason;
- concept_id 0 ("No matching concept") is OMOP's marker for "unknown", not a concept, and is skipped;
- synonyms are kept in one language (English, 4180186, by default) because the encoders are English;
- "Maps to" rows are kept when valid and both ends are in CONCEPT.csv; the target may belong to a
  vocabulary that was filtered out (ICD10CM → SNOMED), so its key is looked up in a second pass.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

from .errors import SourceError, require_dir, source_error
from .records import Concept, Name, VocabularyPart, concept_key
from .tsv import read_tsv

log = logging.getLogger(__name__)

ENGLISH = 4180186
CONCEPT_COLUMNS = ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
                   "standard_concept", "concept_code", "valid_start_date", "valid_end_date", "invalid_reason")
SYNONYM_COLUMNS = ("concept_id", "concept_synonym_name", "language_concept_id")
RELATIONSHIP_COLUMNS = ("concept_id_1", "concept_id_2", "relationship_id", "invalid_reason")
VOCABULARY_COLUMNS = ("vocabulary_id", "vocabulary_version")
_STANDARD = {"S": "S", "C": "C", "": None}
_FIX = "use the files exactly as Athena ships them (TAB-separated, lowercase header row, no quoting)"


def load_athena(
    directory: Path,
    vocabularies: set[str] | None = None,
    *,
    include_invalid: bool = False,
    synonym_language_id: int | None = ENGLISH,
) -> list[VocabularyPart]:
    """Read an unpacked Athena download; one part per vocabulary_id (only ``vocabularies`` when given).

    ``synonym_language_id=None`` keeps synonyms of every language.
    """
    directory = require_dir(Path(directory), "Athena vocabulary")
    concept_file = _find(directory, "CONCEPT.csv", required=True)
    versions = _versions(_find(directory, "VOCABULARY.csv"))
    parts: dict[str, VocabularyPart] = {}
    ids: dict[int, Concept] = {}
    for concept in _concepts(concept_file, vocabularies, include_invalid):
        part = parts.get(concept.vocabulary_id)
        if part is None:
            part = VocabularyPart(concept.vocabulary_id, versions.get(concept.vocabulary_id, "unknown"),
                                  str(directory))
            parts[concept.vocabulary_id] = part
        part.concepts.append(concept)
        part.names.append(Name(concept.concept_key, concept.concept_name, "preferred"))
        ids[concept.omop_concept_id] = concept
    if vocabularies and not parts:
        raise SourceError(f"{concept_file}: no valid concept of {sorted(vocabularies)}; check the vocabulary ids "
                          "(Athena spelling, e.g. SNOMED, ICD10CM) and that the download includes them")
    _add_synonyms(_find(directory, "CONCEPT_SYNONYM.csv"), ids, parts, synonym_language_id)
    _add_maps_to(_find(directory, "CONCEPT_RELATIONSHIP.csv"), concept_file, ids, parts)
    return [parts[v] for v in sorted(parts)]


def _find(directory: Path, name: str, required: bool = False) -> Path | None:
    """Athena ships upper-case names; accept any case since some tools lower-case them."""
    for candidate in directory.iterdir():
        if candidate.name.lower() == name.lower() and candidate.is_file():
            return candidate
    if required:
        raise SourceError(f"{directory}: no {name}; pass the folder of the unpacked Athena download")
    return None


def _int(path: Path, line: int, row: dict[str, str], column: str) -> int:
    try:
        return int(row[column])
    except ValueError:
        raise source_error(path, f"{row[column]!r} is not an integer", _FIX, line=line, field=column) from None


def _date(path: Path, line: int, row: dict[str, str], column: str) -> dt.date:
    """Athena writes YYYYMMDD; ISO YYYY-MM-DD (a re-export) is accepted too."""
    try:
        return dt.date.fromisoformat(row[column])
    except ValueError:
        raise source_error(path, f"{row[column]!r} is not a date", "dates must be YYYYMMDD as Athena writes them",
                           line=line, field=column) from None


def _concepts(path: Path, vocabularies: set[str] | None, include_invalid: bool) -> Iterator[Concept]:
    for line, row in read_tsv(path, CONCEPT_COLUMNS, _FIX):
        if vocabularies is not None and row["vocabulary_id"] not in vocabularies:
            continue
        if row["invalid_reason"] and not include_invalid:
            continue
        concept_id = _int(path, line, row, "concept_id")
        if concept_id == 0:
            continue
        if row["standard_concept"] not in _STANDARD:
            raise source_error(path, f"standard_concept {row['standard_concept']!r} is not 'S', 'C' or empty",
                               _FIX, line=line, field="standard_concept")
        for column in ("concept_code", "concept_name", "vocabulary_id"):
            if not row[column].strip():
                raise source_error(path, f"empty {column}", _FIX, line=line, field=column)
        yield Concept(
            vocabulary_id=row["vocabulary_id"],
            concept_code=row["concept_code"],
            concept_name=row["concept_name"],
            domain_id=row["domain_id"],
            concept_class_id=row["concept_class_id"],
            standard_concept=_STANDARD[row["standard_concept"]],
            omop_concept_id=concept_id,
            valid_start_date=_date(path, line, row, "valid_start_date"),
            valid_end_date=_date(path, line, row, "valid_end_date"),
            invalid_reason=row["invalid_reason"] or None,
        )


def _versions(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    return {row["vocabulary_id"]: row["vocabulary_version"] or "unknown"
            for _, row in read_tsv(path, VOCABULARY_COLUMNS, _FIX)}


def _add_synonyms(path: Path | None, ids: dict[int, Concept], parts: dict[str, VocabularyPart],
                  language_id: int | None) -> None:
    if path is None:
        return
    for line, row in read_tsv(path, SYNONYM_COLUMNS, _FIX):
        concept = ids.get(_int(path, line, row, "concept_id"))
        if concept is None or not row["concept_synonym_name"].strip():
            continue
        if language_id is not None and _int(path, line, row, "language_concept_id") != language_id:
            continue
        parts[concept.vocabulary_id].names.append(Name(concept.concept_key, row["concept_synonym_name"], "synonym"))


def _add_maps_to(path: Path | None, concept_file: Path, ids: dict[int, Concept],
                 parts: dict[str, VocabularyPart]) -> None:
    if path is None:
        return
    pending: list[tuple[Concept, int]] = []
    for line, row in read_tsv(path, RELATIONSHIP_COLUMNS, _FIX):
        if row["relationship_id"] != "Maps to" or row["invalid_reason"]:
            continue
        source = ids.get(_int(path, line, row, "concept_id_1"))
        if source is not None:
            pending.append((source, _int(path, line, row, "concept_id_2")))
    elsewhere = _keys_of(concept_file, {t for _, t in pending if t not in ids})
    dropped = 0
    for source, target_id in pending:
        target = ids[target_id].concept_key if target_id in ids else elsewhere.get(target_id)
        if target is None:
            dropped += 1
            continue
        parts[source.vocabulary_id].maps_to.append((source.concept_key, target))
    if dropped:
        log.warning("%s: dropped %d 'Maps to' rows whose target concept is not in %s", path, dropped,
                    concept_file.name)


def _keys_of(path: Path, wanted: set[int]) -> dict[int, str]:
    """Concept keys of ``wanted`` ids, from any vocabulary (second pass over CONCEPT.csv)."""
    if not wanted:
        return {}
    found: dict[int, str] = {}
    for line, row in read_tsv(path, CONCEPT_COLUMNS, _FIX):
        concept_id = _int(path, line, row, "concept_id")
        if concept_id in wanted:
            found[concept_id] = concept_key(row["vocabulary_id"], row["concept_code"])
    return found
