"""The console script: --help everywhere, clear errors for bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

COMMANDS = [[], ["run"], ["vocab"], ["vocab", "build"], ["index"], ["index", "build"], ["model"], ["eval"],
            ["eval", "ner"], ["eval", "context"], ["eval", "linking"], ["train"], ["train", "ner"], ["train", "biencoder"],
            ["model", "export-encoder"], ["model", "calibrate-reranker"], ["report"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(command):
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", *command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: " in out.stdout and ("--" in out.stdout if command[-1:] in (["ner"], ["linking"], ["biencoder"]) else "clin-linker" in out.stdout)


def test_missing_notes_file_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "run", "--notes",
                          str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.duckdb")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_bad_section_concept_map_is_a_clear_error_before_any_coding(tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 1, "note_text": "PMH: asthma."}) + "\n")
    sections = tmp_path / "sections.json"
    sections.write_text(json.dumps({"hpi": "LOINC:10164-2"}))
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "run", "--notes", str(notes),
                          "--out", str(tmp_path / "o.duckdb"), "--derive-clinical-tables",
                          "--section-concepts", str(sections)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "unknown section title(s) ['hpi']" in out.stderr and "history_of_present_illness" in out.stderr
    assert not (tmp_path / "o.duckdb").exists()


def test_vocab_build_rejects_unknown_source(tmp_path):
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "vocab", "build", "--source", "mesh",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "valid kinds" in out.stderr


def test_vocab_index_and_run_commands_chain(tmp_path):
    """A user's own vocabulary through the three commands: store -> index -> coded notes."""
    cli = [sys.executable, "-m", "clin_linker.beam_jobs.cli"]
    fixture = Path(__file__).parent / "fixtures" / "custom" / "site_problems.csv"
    steps = [
        ["vocab", "build", "--source", f"custom:SITE={fixture}", "--out", str(tmp_path / "store")],
        ["index", "build", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "index")],
    ]
    for step in steps:
        out = subprocess.run(cli + step, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 1, "note_text": "Recurrent falls at home. Lumbago since May."}) + "\n")
    out = subprocess.run(cli + ["run", "--notes", str(notes), "--index", str(tmp_path / "index"),
                                "--out", str(tmp_path / "o.duckdb")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "read 1 = coded 1 + dead-lettered 0" in out.stdout
    con = duckdb.connect(str(tmp_path / "o.duckdb"), read_only=True)
    codes = {r[0] for r in con.execute(
        "select c.concept_code from note_nlp n join concept c on c.concept_id = n.note_nlp_source_concept_id").fetchall()}
    assert codes == {"LP001", "LP002"}


def test_eval_context_on_a_hand_made_file(tmp_path):
    """Line 2's annotator calls plain "asthma" negated: one false negative; flags absent are not scored."""
    rows = [
        {"text": "Denies chest pain.", "start": 7, "end": 17, "negated": True},
        {"text": "Patient has asthma.", "start": 12, "end": 18, "negated": True},
        {"text": "No fever today.", "start": 3, "end": 8, "negated": True},
        {"text": "Mother had breast cancer.", "start": 11, "end": 24, "family": True},
    ]
    data = tmp_path / "context.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "eval", "context", "--data", str(data),
                          "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    scores = json.loads(out.stdout)
    assert set(scores) == {"negated", "family"}
    assert scores["negated"]["n"] == 3
    assert scores["negated"]["accuracy"] == pytest.approx(2 / 3)
    assert scores["negated"]["precision"] == pytest.approx(1.0)
    assert scores["negated"]["recall"] == pytest.approx(2 / 3)
    assert scores["negated"]["f1"] == pytest.approx(0.8)
    assert scores["family"] == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "n": 1}
