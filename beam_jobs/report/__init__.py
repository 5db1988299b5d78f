"""The review report of a run: one self-contained HTML file (``clin-linker report``, and ``clin-linker run`` unless
``--no-report``).

What a person cannot get from SQL at a glance: the run summary, plots of the scores, domains and codes per note, and
each note's text with its mentions highlighted and their codes, scores, candidates and flags one hover away
(docs/report.md). Self-contained because it is opened where the notes are, often offline: no network, no CDN;
CSS, JavaScript and SVG are inline, and a Content-Security-Policy forbids fetching anything.

- :mod:`.data` reads the run from the DuckDB output (tables clin_linker_run, clin_linker_mention, note_nlp,
  clin_linker_note_code) and the note text from the run's notes files;
- :mod:`.plots` draws the plots (matplotlib, SVG); :mod:`.render` builds the page (Jinja2 + displaCy).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .data import load_report
from .render import render_report

__all__ = ["DEFAULT_MAX_NOTES", "SIZE_BUDGET", "ReportFile", "default_report_path", "write_report"]

#: Notes in the per-note view unless chosen with ``--notes``: enough to review, and the file stays small whatever
#: the size of the run.
DEFAULT_MAX_NOTES = 50
#: The report's size budget in bytes at DEFAULT_MAX_NOTES notes (docs/report.md; tests/test_report.py checks it).
SIZE_BUDGET = 2_000_000


@dataclass(frozen=True)
class ReportFile:
    path: Path
    size: int
    notes: int  # in the per-note view
    redacted: bool
    without_text: int  # notes shown without their text although not redacted (file gone or changed)


def default_report_path(db: Path) -> Path:
    """``OUT.report.html`` next to the database, as the dead letters are ``OUT.dead_letter.jsonl``."""
    db = Path(db)
    return db.with_name(db.name + ".report.html")


def write_report(db: Path, out: Path | None = None, note_ids: Sequence[int] | None = None,
                 max_notes: int = DEFAULT_MAX_NOTES, redact: bool = False) -> ReportFile:
    """Write the report of the latest run in ``db`` to ``out`` (default :func:`default_report_path`).

    The file is created readable by its owner only (mode 0600): unless ``redact``, it holds note text.
    """
    db = Path(db)
    if not db.is_file():
        raise FileNotFoundError(f"database {db} does not exist; write one with `clin-linker run --out {db}`")
    out = Path(out) if out is not None else default_report_path(db)
    data = load_report(db, note_ids, max_notes, redact)
    html = render_report(data, str(db)).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode on open: patient data, owner only
        f.write(html)
    return ReportFile(out, len(html), len(data.notes), redact,
                      sum(1 for n in data.notes if n.text is None and not redact))
