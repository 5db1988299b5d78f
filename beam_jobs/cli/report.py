"""``clin-linker report``: the review report of the latest run in a DuckDB output, as one HTML file."""
from __future__ import annotations

import argparse
from pathlib import Path


def _positive(text: str) -> int:
    """argparse type of --max-notes: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def print_report_line(report) -> None:
    """The run summary's last line: where the report is (what a person opens next)."""
    detail = f"{report.size / 1000:.0f} KB, {report.notes} note(s) in the per-note view"
    if report.redacted:
        detail += ", redacted: no note text"
    elif report.without_text:
        detail += f", {report.without_text} without their text (notes file gone or changed)"
    print(f"report            {report.path}   ({detail})")


def _report(args: argparse.Namespace) -> int:
    from ..report import write_report

    report = write_report(Path(args.db), Path(args.out) if args.out else None, args.notes, args.max_notes,
                          args.redact)
    print_report_line(report)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from ..report import DEFAULT_MAX_NOTES

    report = commands.add_parser(
        "report",
        help="write the review report of a run: summary, plots and highlighted notes in one HTML file",
        description="Write one self-contained HTML file (no network; docs/report.md) about the latest "
        "`clin-linker run` in a DuckDB output: the run summary, plots of scores, domains and codes per note, and "
        "a per-note view with every mention highlighted and its code, score, candidates, section and context "
        "flags, plus the ranked code list of a --code run. The note text is read back from the notes files the "
        "run recorded. It is patient data: the file is written readable by its owner only, and --redact leaves "
        "the text out.",
    )
    report.add_argument("--db", required=True, help="the DuckDB file `clin-linker run --out` wrote")
    report.add_argument("--out", help="HTML file to write (default: DB.report.html next to the database)")
    report.add_argument("--notes", type=int, nargs="+", action="extend", metavar="ID",
                        help="note ids to show in the per-note view (default: the run's first --max-notes notes "
                        "with mentions, by id)")
    report.add_argument("--max-notes", type=_positive, default=DEFAULT_MAX_NOTES, metavar="N",
                        help="notes in the per-note view without --notes (default %(default)s)")
    report.add_argument("--redact", action="store_true",
                        help="write the mentions without the note text around them (their own words, codes and "
                        "note ids stay: still patient data, but no note is in it)")
    report.set_defaults(handler=_report)
