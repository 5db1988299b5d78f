"""A site's own vocabulary from a CSV or JSONL file (local problem lists, registry codes, …).

Formats, chosen by file suffix:
- ``.csv``: header ``code,name[,synonyms][,domain][,concept_class]``; synonyms separated by ``|``;
- ``.jsonl`` / ``.ndjson``: one object per line ``{"code", "name", "synonyms": [...], "domain",
  "concept_class"}``; blank lines are allowed.

Custom codes never carry Athena ids: the store gives them deterministic local ids (>= 2e9), and they are
non-standard (OMOP allows local ids only as source concepts). Input is validated strictly, because a
silently skipped row becomes a concept the linker can never find: a missing code or name, a duplicate
code, an unknown column or domain stops the load with the file, line and field named.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import SourceError, require_file, source_error
from .records import Concept, Name, VocabularyPart, concept_key

#: Athena's vocabulary_id is varchar(20); the key syntax needs it to start with a letter and hold no ':'.
VOCABULARY_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,19}$")
#: OMOP domains a mention in a note can belong to.
DOMAINS = ("Condition", "Observation", "Procedure", "Measurement", "Drug", "Device", "Specimen",
           "Spec Anatomic Site", "Visit", "Meas Value", "Unit")
COLUMNS = ("code", "name", "synonyms", "domain", "concept_class")
DEFAULT_CONCEPT_CLASS = "Custom"
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def load_custom(path: Path, vocabulary_id: str, default_domain: str = "Condition") -> VocabularyPart:
    """Read a custom vocabulary file; rows without a domain get ``default_domain``."""
    path = require_file(Path(path), "custom vocabulary file")
    if not VOCABULARY_ID.match(vocabulary_id):
        raise SourceError(f"{path}: vocabulary id {vocabulary_id!r} is not valid; use 1-20 letters, digits, '_' "
                          "or '-', starting with a letter (OMOP vocabulary_id is varchar(20))")
    if default_domain not in DOMAINS:
        raise SourceError(f"{path}: default domain {default_domain!r} is not one of {', '.join(DOMAINS)}")
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SourceError(f"{path}: unknown suffix {path.suffix!r}; name the file .csv, .jsonl or .ndjson")
    rows = _csv_rows(path) if kind == "csv" else _jsonl_rows(path)
    part = VocabularyPart(vocabulary_id, "custom", str(path))
    first_line: dict[str, int] = {}
    for line, row in rows:
        code = _required(path, line, row, "code")
        if code in first_line:
            raise source_error(path, f"code {code!r} is already defined on line {first_line[code]}",
                               "give each code one row (put extra names in 'synonyms')", line=line, field="code")
        first_line[code] = line
        _add(part, path, line, row, code, default_domain)
    return part


def _required(path: Path, line: int, row: dict[str, object], field: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise source_error(path, f"missing {field}", f"every row needs a non-empty {field!r}", line=line, field=field)
    return value.strip()


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        _check_columns(path, header)
        reader.fieldnames = header
        for row in reader:
            if None in row:
                raise source_error(path, "more fields than header columns",
                                   "quote fields that contain commas", line=reader.line_num)
            synonyms = row.get("synonyms") or ""
            yield reader.line_num, {**row, "synonyms": synonyms.split("|")}


def _check_columns(path: Path, header: list[str]) -> None:
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise source_error(path, f"unknown column {unknown[0]!r}", f"use only the columns {', '.join(COLUMNS)}",
                           line=1, field=unknown[0])
    for column in ("code", "name"):
        if column not in header:
            raise source_error(path, f"missing column {column!r}", "the header must start with code,name",
                               line=1, field=column)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise source_error(path, f"not valid JSON ({exc.msg})", "write one JSON object per line",
                                   line=line) from None
            if not isinstance(row, dict):
                raise source_error(path, "not a JSON object", "write one JSON object per line", line=line)
            unknown = [k for k in row if k not in COLUMNS]
            if unknown:
                raise source_error(path, f"unknown field {unknown[0]!r}", f"use only the fields {', '.join(COLUMNS)}",
                                   line=line, field=unknown[0])
            synonyms = row.get("synonyms", [])
            if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
                raise source_error(path, "synonyms is not a list of strings", 'write "synonyms": ["…", "…"]',
                                   line=line, field="synonyms")
            yield line, row


def _add(part: VocabularyPart, path: Path, line: int, row: dict[str, object], code: str, default_domain: str) -> None:
    name = _required(path, line, row, "name")
    domain = str(row.get("domain") or "").strip() or default_domain
    if domain not in DOMAINS:
        raise source_error(path, f"domain {domain!r} is not an OMOP domain we link to",
                           f"use one of {', '.join(DOMAINS)}", line=line, field="domain")
    part.concepts.append(Concept(
        vocabulary_id=part.vocabulary_id,
        concept_code=code,
        concept_name=name,
        domain_id=domain,
        concept_class_id=str(row.get("concept_class") or "").strip() or DEFAULT_CONCEPT_CLASS,
        standard_concept=None,
    ))
    key = concept_key(part.vocabulary_id, code)
    part.names.append(Name(key, name, "preferred"))
    part.names.extend(Name(key, s.strip(), "synonym") for s in row.get("synonyms", []) if s.strip())
