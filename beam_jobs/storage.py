"""Every file the batch job touches goes through Beam's ``FileSystems``: notes, staging shards, index and models.

Why: on a cluster (Dataflow, Flink, Spark) a worker has no view of the driver's disk, so inputs, the staging folder
and the artifacts are URLs (``gs://``, ``s3://``, ``hdfs://``, ... whatever filesystems the Beam installation has)
and the same code must also take plain local paths. Beam's local filesystem takes paths, not ``file://`` URLs, so
:func:`beam_path` turns those into paths first.

Staging shards are written under a temporary name and renamed (:func:`write_atomically`): a worker killed mid-write
leaves only a temporary file the driver ignores, and a retried bundle, whose shard name is derived from its content,
replaces the same file instead of adding a second copy.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ..ontologies.default_index import clin_linker_home

#: Suffix of a shard being written; the driver never reads these.
PARTIAL_SUFFIX = ".partial"
_FETCH_LOCK = threading.Lock()


def beam_path(location: str | os.PathLike) -> str:
    """A location Beam's ``FileSystems`` accepts: ``file://`` URLs become local paths, other URLs stay as they are."""
    text = str(location)
    if text.startswith("file://"):
        return unquote(urlparse(text).path)
    return text


def is_local(location: str | os.PathLike) -> bool:
    """Whether ``location`` is on this machine's disk (a path or a ``file://`` URL)."""
    return FileSystems.get_scheme(beam_path(location)) is None


def join(base: str, *parts: str) -> str:
    return FileSystems.join(beam_path(base), *parts)


def match_inputs(patterns: Sequence[str | os.PathLike]) -> list[str]:
    """Every file the patterns (paths, URLs, globs) name, in the order given and sorted within a glob.

    A pattern that names nothing is an error naming it: a nightly job must not succeed on zero notes because a
    path was mistyped.
    """
    files: list[str] = []
    for pattern in patterns:
        location = beam_path(pattern)
        if is_local(location):
            location = str(Path(location).expanduser().resolve())
        found = sorted(m.path for m in FileSystems.match([location])[0].metadata_list)
        if not found:
            raise FileNotFoundError(f"notes file {pattern} does not exist (no file matches it)")
        files.extend(found)
    return list(dict.fromkeys(files))


def open_binary(location: str):
    """A binary reader of any supported location, uncompressed as stored (no guessing from the suffix)."""
    return FileSystems.open(beam_path(location), compression_type=CompressionTypes.UNCOMPRESSED)


def write_atomically(location: str, data: bytes) -> None:
    """Write ``data`` to ``location`` under a temporary name, then rename it into place."""
    final = beam_path(location)
    partial = f"{final}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"
    with FileSystems.create(partial, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    if FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([partial], [final])


def content_name(prefix: str, keys: Iterable[object], suffix: str) -> str:
    """A shard name derived from what it holds (its sorted note ids): the same content always gets the same name."""
    digest = hashlib.sha256("\x1f".join(sorted(map(str, keys))).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}{suffix}"


def list_files(folder: str, glob: str) -> list[str]:
    """Finished files in ``folder`` matching ``glob`` (partial writes excluded), sorted."""
    found = FileSystems.match([join(folder, glob)])[0].metadata_list
    return sorted(m.path for m in found if not m.path.endswith(PARTIAL_SUFFIX))


def read_bytes(location: str) -> bytes:
    with open_binary(location) as f:
        return f.read()


def local_copies(locations: Sequence[str], folder: Path) -> list[Path]:
    """Local paths of ``locations`` (remote ones copied into ``folder``): DuckDB reads Parquet from local files."""
    paths = []
    for location in locations:
        if is_local(location):
            paths.append(Path(beam_path(location)))
            continue
        target = folder / f"{len(paths):06d}-{Path(urlparse(location).path).name}"
        target.write_bytes(read_bytes(location))
        paths.append(target)
    return paths


def delete_tree(folder: str) -> None:
    """Remove a staging folder and everything in it (best effort: a left-over staging folder is only space)."""
    location = beam_path(folder)
    if is_local(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    try:
        FileSystems.delete([location.rstrip("/") + "/"])
    except Exception:  # noqa: BLE001 - cleanup must not hide the run's own result or error
        pass


def fetch_directory(location: str, cache_root: Path | None = None) -> Path:
    """A local copy of an artifact directory (index, model) addressed by URL, fetched once per machine.

    A local path is returned as it is. A remote one is copied file by file into
    ``<clin-linker home>/fetched/<hash of the URL>`` (``CLIN_LINKER_HOME`` moves it) and marked complete only
    when every file has arrived, so a worker killed mid-copy makes the next one fetch again instead of loading half
    an index. Workers call this in ``load_model``: once per process, the copy is shared by all bundles.
    """
    source = beam_path(location)
    if is_local(source):
        return Path(source).expanduser().resolve()
    root = cache_root or clin_linker_home() / "fetched"
    target = root / hashlib.sha256(source.rstrip("/").encode()).hexdigest()[:16]
    done = target / ".complete"
    with _FETCH_LOCK:
        if done.exists():
            return target
        prefix = source.rstrip("/") + "/"
        files = [m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list]
        if not files:
            raise FileNotFoundError(f"{location} holds no files; give the URL of an index or model directory")
        staging = target.with_name(target.name + f".{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
        for remote in files:
            local = staging / remote[len(prefix):]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(read_bytes(remote))
        (staging / ".complete").write_text(source + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target
