"""Streaming reader for the TAB-separated, unquoted files of Athena and SNOMED RF2 releases.

Both ship multi-million-row files whose text fields hold bare ``"`` characters, so they must be read
with ``csv.QUOTE_NONE`` (the csv default would swallow lines up to the next quote), one row per line.
Every problem is reported with file, line and column.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from .errors import source_error


def read_tsv(path: Path, required: tuple[str, ...], fix: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for every data row, after checking the header and each row's width.

    ``fix`` tells the user what to do when the file is not as expected.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader, None)
            if header is None:
                raise source_error(path, "the file is empty", fix, line=1)
            _check_header(path, header, required, fix)
            for row in reader:
                if len(row) != len(header):
                    raise source_error(path, f"{len(row)} fields where the header has {len(header)}", fix,
                                       line=reader.line_num)
                yield reader.line_num, dict(zip(header, row))
        except UnicodeDecodeError as exc:
            raise source_error(path, f"not UTF-8 ({exc.reason})", fix, line=reader.line_num + 1) from None


def _check_header(path: Path, header: list[str], required: tuple[str, ...], fix: str) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        hint = " (the header has commas: the file is not TAB-separated)" if "," in "".join(header) else ""
        raise source_error(path, f"missing column {missing[0]!r}{hint}", fix, line=1, field=missing[0])
