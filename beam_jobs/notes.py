"""Reading and validating input notes (DESIGN §2 "Input note"); everything that fails becomes a
dead-letter record with a reason code, the file and the line/row, never a silent drop.

Files are read through Beam's ``FileSystems`` (``.storage``), so a notes file can be a local path or any URL a
cluster's workers read; rows of a database NOTE table (``.note_tables``) go through the same :func:`validate`.

Dead letters never carry ``note_text``: it is patient data.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import jsonschema
from apache_beam.io.filesystems import FileSystems

from ..schemas import json_schema
from .storage import beam_path, open_binary

FORMATS = ("jsonl", "csv", "parquet")
_NOTE_VALIDATOR = jsonschema.Draft202012Validator(json_schema("note"), format_checker=jsonschema.FormatChecker())


@dataclass(frozen=True)
class RawRecord:
    """One input record (or the reason it could not be parsed) and where it came from."""

    source: str
    position: int
    record: dict | None = field(repr=False)  # holds note_text: never in a repr (tracebacks, logs)
    error: tuple[str, str] | None = None  # (reason_code, reason)


@dataclass(frozen=True)
class Note:
    note_id: int
    note_text: str = field(repr=False)  # patient data: never in a repr (tracebacks, logs)
    source: str
    position: int
    fields: dict = field(default_factory=dict)  # the other NOTE fields (person_id, note_date, ...)


def dead_letter(source: str, position: int | None, record: dict | None, code: str, reason: str) -> dict:
    """A record of dead_letter.schema.json; note_text is removed from the copy of the input."""
    note_id = record.get("note_id") if isinstance(record, dict) else None
    if not isinstance(note_id, (int, str)) or isinstance(note_id, bool):
        note_id = None
    kept = {k: v for k, v in record.items() if k != "note_text"} if isinstance(record, dict) else None
    return {"source": source, "position": position, "note_id": note_id, "reason_code": code,
            "reason": reason, "record": json.loads(json.dumps(kept, default=str)) if kept is not None else None}


def detect_format(path: str | Path) -> str:
    suffix = PurePosixPath(str(path)).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; pass --format one of {FORMATS}")


def _read_jsonl(path: str) -> Iterator[RawRecord]:
    with open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield RawRecord(str(path), number, None, ("undecodable_bytes",
                                f"line is not valid UTF-8 (byte {e.start}); re-export the file as UTF-8"))
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                yield RawRecord(str(path), number, None, ("unparseable_record", f"invalid JSON: {e.msg} at column {e.colno}"))
                continue
            if not isinstance(record, dict):
                yield RawRecord(str(path), number, None, ("unparseable_record", "a line must hold one JSON object"))
                continue
            yield RawRecord(str(path), number, record)


def _has_undecodable(value: object) -> bool:
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


def _read_csv(path: str) -> Iterator[RawRecord]:
    delimiter = "\t" if PurePosixPath(path).suffix.lower() == ".tsv" else ","
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text, delimiter=delimiter)
        for number, row in enumerate(reader, start=1):
            bad = [k for k, v in row.items() if _has_undecodable(v) or _has_undecodable(k)]
            if bad:
                safe = {k: v for k, v in row.items() if not _has_undecodable(v) and not _has_undecodable(k)}
                yield RawRecord(str(path), number, safe, ("undecodable_bytes",
                                f"field(s) {', '.join(map(repr, bad))} are not valid UTF-8; re-export the file as UTF-8"))
                continue
            yield RawRecord(str(path), number, {k: (v if v != "" else None) for k, v in row.items()})


def _read_parquet(path: str) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    number = 0
    with open_binary(path) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                yield RawRecord(str(path), number, row)


def read_records(path: str | Path, fmt: str = "auto") -> Iterator[RawRecord]:
    """Yield every record of one notes file (a path or any URL Beam's FileSystems reads); ``position`` is the
    1-based line (JSONL) or row number."""
    path = beam_path(path)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"notes file {path} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}
    if fmt not in readers:
        raise ValueError(f"unknown notes format {fmt!r}; use one of {FORMATS}")
    yield from readers[fmt](path)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _coerce(record: dict) -> dict:
    """CSV gives strings and Parquet gives dates/floats: bring them to the JSON shape the schema checks."""
    out = dict(record)
    for name in ("note_id", "person_id", "note_type_concept_id"):
        if out.get(name) is not None and _as_int(out[name]) is not None:
            out[name] = _as_int(out[name])
    for name in ("note_date", "note_datetime"):
        if isinstance(out.get(name), (dt.date, dt.datetime)):
            out[name] = out[name].isoformat()
    return out


def validate(raw: RawRecord) -> Note | dict:
    """A valid :class:`Note`, or a dead-letter dict saying which field is wrong and what to do."""
    if raw.error:
        return dead_letter(raw.source, raw.position, raw.record, *raw.error)
    record = _coerce(raw.record)
    where = f"{raw.source}:{raw.position}"
    note_id = record.get("note_id")
    if note_id is None:
        return dead_letter(raw.source, raw.position, record, "missing_note_id",
                           f"{where}: field note_id is missing; every note needs a unique int64 note_id")
    if not isinstance(note_id, int) or isinstance(note_id, bool) or not -(2**63) <= note_id < 2**63:
        return dead_letter(raw.source, raw.position, record, "invalid_note_id",
                           f"{where}: field note_id must be an int64, got {type(note_id).__name__}")
    text = record.get("note_text")
    if text is None:
        return dead_letter(raw.source, raw.position, record, "empty_text",
                           f"{where}: note {note_id} has no note_text field; export the note body as note_text")
    if not isinstance(text, str):
        return dead_letter(raw.source, raw.position, record, "non_text_body",
                           f"{where}: note {note_id} note_text is {type(text).__name__}, not text; export the body as a string")
    if not text.strip():
        return dead_letter(raw.source, raw.position, record, "empty_text",
                           f"{where}: note {note_id} note_text is empty or blank")
    errors = sorted(_NOTE_VALIDATOR.iter_errors(record), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        field_name = ".".join(map(str, err.path)) or "(record)"
        return dead_letter(raw.source, raw.position, record, "invalid_field",
                           f"{where}: note {note_id} field {field_name}: {err.message.split(chr(10))[0][:200]}")
    fields = {k: v for k, v in record.items() if k not in ("note_id", "note_text")}
    return Note(note_id, text, raw.source, raw.position, fields)
