"""One error type for unreadable vocabulary sources, so every loader reports problems the same way.

A user who hands clin-linker a 2 GB Athena export or a hand-made CSV needs to know *where* the
problem is (file, line, field) and *what to do*; a bare ``KeyError`` from deep inside a parser helps
nobody. Loaders raise :class:`SourceError` through :func:`source_error`, which builds that message.
"""
from __future__ import annotations

from pathlib import Path


class SourceError(ValueError):
    """A vocabulary source cannot be read; the message names the file, line and field and says what to do."""


def source_error(
    path: Path | str, problem: str, fix: str, *, line: int | None = None, field: str | None = None
) -> SourceError:
    """Build a :class:`SourceError` whose message reads ``FILE, line N, field F: PROBLEM; FIX``."""
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if field is not None:
        where += f", field {field!r}"
    return SourceError(f"{where}: {problem}; {fix}")


def require_file(path: Path, what: str) -> Path:
    """Fail early with a helpful message when a source file is missing (instead of a bare FileNotFoundError)."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: {what} not found; check the path (it must be a file, not a folder)")
    return path


def require_dir(path: Path, what: str) -> Path:
    """Like :func:`require_file` for sources that are folders (Athena export, RF2 release)."""
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"{path}: {what} folder not found; pass the folder that holds the unpacked files")
    return path
