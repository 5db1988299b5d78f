"""Reading and validating notes: every kind of bad note becomes a dead letter with its reason."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clin_linker.beam_jobs.notes import Note, read_records, validate


def _validated(path, fmt="auto"):
    return [validate(r) for r in read_records(path, fmt)]


def _codes(results):
    return [r["reason_code"] if isinstance(r, dict) else "ok" for r in results]


def test_jsonl_each_kind_of_bad_line(tmp_path):
    path = tmp_path / "notes.jsonl"
    lines = [
        json.dumps({"note_id": 1, "note_text": "Essential hypertension."}).encode(),
        json.dumps({"note_text": "no id here"}).encode(),
        json.dumps({"note_id": "abc", "note_text": "bad id"}).encode(),
        json.dumps({"note_id": 3, "note_text": "   \n "}).encode(),
        json.dumps({"note_id": 4, "note_text": 12345}).encode(),
        json.dumps({"note_id": 5}).encode(),
        b'{"note_id": 6, "note_text": "caf\xe9 latte"}',  # latin-1 byte: not UTF-8
        b'{"note_id": 7, "note_text": ',
        b"[1, 2]",
        json.dumps({"note_id": 8, "note_text": "ok", "note_date": "2026-02-30"}).encode(),
        b"",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = _validated(path)
    assert _codes(results) == ["ok", "missing_note_id", "invalid_note_id", "empty_text", "non_text_body",
                               "empty_text", "undecodable_bytes", "unparseable_record", "unparseable_record",
                               "invalid_field"]
    dead = [r for r in results if isinstance(r, dict)]
    assert [d["position"] for d in dead] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    for d in dead:
        assert d["record"] is None or "note_text" not in d["record"]  # never keep patient text
        assert str(path) in d["reason"] or d["reason_code"] in ("undecodable_bytes", "unparseable_record")
    assert "note_date" in dead[-1]["reason"]


def test_dead_letters_match_their_json_schema(tmp_path):
    import jsonschema

    from clin_linker.schemas import json_schema

    path = tmp_path / "notes.jsonl"
    path.write_bytes(b'{"note_text": "x"}\n{"note_id": 2, "note_text": ""}\n\xff\xfe\n')
    for record in _validated(path):
        jsonschema.validate(record, json_schema("dead_letter"))


def test_csv_with_quoted_newlines_and_undecodable_bytes(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_bytes(
        b'note_id,person_id,note_text\n'
        b'10,7,"Line one.\nLine two: gout."\n'
        b'11,7,"Caf\xe9 note"\n'
        b'12,,"Essential hypertension."\n'
    )
    results = _validated(path)
    assert _codes(results) == ["ok", "undecodable_bytes", "ok"]
    assert isinstance(results[0], Note) and results[0].note_id == 10 and results[0].fields["person_id"] == 7
    assert results[0].note_text == "Line one.\nLine two: gout."
    assert "note_text" in results[1]["reason"] and results[1]["position"] == 2


def test_parquet_rows(tmp_path):
    path = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"note_id": [1, 2, None], "note_text": ["Asthma.", None, "Gout."]}), path)
    assert _codes(_validated(path)) == ["ok", "empty_text", "missing_note_id"]


def test_unknown_suffix_and_missing_file_are_clear_errors(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("x")
    with pytest.raises(ValueError, match="--format"):
        list(read_records(odd))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(read_records(tmp_path / "nope.jsonl"))
