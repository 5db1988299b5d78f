"""`clin-linker run` fails loudly: a run in which too many notes fail in the pipeline exits 1, naming the share.

The failures are real: a note holding a lone UTF-16 surrogate (an export that split a character; JSON lets it through
as ``\ud800``) makes the shipped pipeline's tokenizer raise, so it becomes a ``pipeline_error`` dead letter while the
rest of the run goes on. (Notes longer than spaCy's ``max_length`` used to be the example; they are coded in pieces
now, tests/test_batch_etl.py.)
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from clin_linker.beam_jobs.cli import main

BROKEN = "Patient reports asthma \ud800 and wheeze."  # a lone surrogate: the tokenizer cannot encode it
GOOD = "Assessment: type 2 diabetes mellitus. Plan: metformin."


def _run(tmp_path: Path, index: Path, texts: list[str], *options: str) -> tuple[int, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"note_id": i + 1, "note_text": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "omop.duckdb"
    code = main(["run", "--notes", str(notes), "--out", str(out), "--index", str(index), "--threads", "1", *options])
    return code, out


def _reasons(out: Path) -> list[str]:
    dead = Path(f"{out}.dead_letter.jsonl")
    return sorted(json.loads(line)["reason_code"] for line in dead.read_text().splitlines())


def test_a_run_where_every_note_fails_exits_1_and_names_the_share(tmp_path, default_index, capsys):
    code, out = _run(tmp_path, default_index, [BROKEN, BROKEN, "   "])
    printed = capsys.readouterr().out
    assert code == 1
    assert (f"ERROR: 2 of 2 notes (100.0%) failed in the pipeline (limit 5.0%, --max-failed-share); "
            f"see the dead letters in {out}.dead_letter.jsonl") in printed
    assert _reasons(out) == ["empty_text", "pipeline_error", "pipeline_error"]
    assert "read 3 = coded 0 + dead-lettered 3" in printed  # nothing lost: the run is balanced, and still fails


def test_below_the_limit_exits_0_and_invalid_input_does_not_count(tmp_path, default_index, capsys):
    texts = [GOOD, BROKEN, "   "]  # 1 of the 2 notes that reached the pipeline failed; 1 note was invalid
    code, out = _run(tmp_path / "at_limit", default_index, texts, "--max-failed-share", "0.5")
    printed = capsys.readouterr().out
    assert code == 0, printed  # 50% is not more than 50% (it would be 2 of 3 if invalid input counted)
    assert "failed in the pipeline" not in printed
    assert _reasons(out) == ["empty_text", "pipeline_error"]

    code, out = _run(tmp_path / "default", default_index, texts)
    assert code == 1
    printed = capsys.readouterr().out
    assert "ERROR: 1 of 2 notes (50.0%) failed in the pipeline (limit 5.0%, --max-failed-share)" in printed


@pytest.mark.parametrize("value", ["1.5", "-0.1", "five"])
def test_max_failed_share_must_be_a_share(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--max-failed-share", value])
    assert exit_info.value.code == 2
    assert "--max-failed-share" in capsys.readouterr().err
