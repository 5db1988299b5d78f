"""The console script: --help everywhere, clear errors for bad input."""
from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [[], ["run"], ["vocab"], ["vocab", "build"], ["index"], ["index", "build"], ["model"],
            ["model", "export-encoder"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(command):
    out = subprocess.run([sys.executable, "-m", "clin_linker.pipeline.cli", *command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: clin-linker" in out.stdout


def test_missing_notes_file_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "clin_linker.pipeline.cli", "run", "--notes",
                          str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.duckdb")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_vocab_build_rejects_unknown_source(tmp_path):
    out = subprocess.run([sys.executable, "-m", "clin_linker.pipeline.cli", "vocab", "build", "--source", "mesh",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "valid kinds" in out.stderr
