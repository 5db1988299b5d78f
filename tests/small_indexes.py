"""A concept store and index over a few vocabulary sources, built with the real encoder in seconds: the index of
the tests that need their own vocabulary next to (or instead of) the embedded default."""
from __future__ import annotations

from pathlib import Path


def build_small_index(root: Path, sources: list[str]) -> Path:
    """Store ``root/store`` from the source specs (``clin-linker vocab build --source`` syntax) and its index
    ``root/index``, embedded with the default encoder; returns the index directory."""
    from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR
    from clin_linker.ontologies.index import build_index
    from clin_linker.ontologies.sources import load_sources
    from clin_linker.ontologies.store import build_store

    build_store(load_sources(sources), root / "store")
    build_index(root / "store", DEFAULT_ENCODER_DIR, root / "index")
    return root / "index"
