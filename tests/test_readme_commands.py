"""Every clin-linker command the README shows parses as written, with the options it shows (README command 1 itself
runs in tests/test_report.py): a renamed option or command fails here, not in a new user's shell."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from clin_linker.beam_jobs.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[list[str]]:
    """The argument lists of every `clin-linker ...` command in the README's bash blocks ([optional] parts kept)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                tokens = shlex.split(part.replace("[", " ").replace("]", " "))
                if tokens and tokens[0].endswith("clin-linker"):
                    commands.append(tokens[1:])
    return commands


def test_the_readme_shows_clin_linker_commands():
    assert len(readme_commands()) >= 4


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_command_parses_as_written(argv):
    args, extra = build_parser().parse_known_args(argv)
    assert not extra or getattr(args, "passes_options_on", False), f"unknown options {extra} in: clin-linker {argv}"
    assert callable(args.handler)
