"""What a component's ``to_disk`` saves besides its config: the model files themselves, so that ``spacy.load``
works on another machine (scispaCy-style paths into a user cache or an installation name whatever those hold
there, or nothing).

Files are hard-linked when the saved pipeline and the source share a filesystem (saving then costs no space),
else copied. A hard link shares the file, so a source rebuilt *in place* (``clin-linker index build --out`` over
the same directory) changes the saved copy too; the default index is rebuilt into fresh files, and a saved index
is checked against its own manifest when it is loaded (:func:`check_saved_index`).

spaCy's ``Language.to_disk`` writes ``config.cfg`` before it asks the components to save themselves, so a
component that saved a copy points the already written config at it (:func:`point_saved_config_at`).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from thinc.api import Config

from ..ontologies.index import encoder_dir_of, read_manifest, store_dir_of
from ..ontologies.store import ConceptStore

#: Where a saved index keeps its concept store and encoder, relative to the index directory.
SAVED_STORE = "store"
SAVED_ENCODER = "encoder"


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed there
        shutil.copy2(src, dst)
    return dst


def link_or_copy_tree(src: Path, dst: Path) -> Path:
    """``dst`` becomes a copy of directory ``src`` (hard links where possible); a previous ``dst`` is replaced."""
    src, dst = Path(src).resolve(), Path(dst)
    if dst.exists() and dst.resolve() == src:  # saving a pipeline over the directory it was loaded from
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".lock"))
    return dst


def save_index(index_dir: Path, out: Path) -> Path:
    """A self-contained copy of an index at ``out``: its files, its concept store and its encoder inside it.

    The copy's manifest names the store and encoder by paths relative to ``out``, so the folder can move.
    """
    index_dir, out = Path(index_dir).resolve(), Path(out)
    if out.exists() and out.resolve() == index_dir:
        return out
    store_dir, encoder_dir = store_dir_of(index_dir), encoder_dir_of(index_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in ("names.hnsw", "labels.parquet"):
        _link_or_copy(str(index_dir / name), str(out / name))
    link_or_copy_tree(store_dir, out / SAVED_STORE)
    link_or_copy_tree(encoder_dir, out / SAVED_ENCODER)
    manifest = read_manifest(index_dir)
    manifest["store_dir"] = SAVED_STORE
    manifest["encoder"] = {**manifest["encoder"], "dir": SAVED_ENCODER}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def check_saved_index(index_dir: Path, store: ConceptStore) -> None:
    """Refuse a saved index whose concept store is no longer the one it was built from.

    (Its encoder needs no check here: :func:`~clin_linker.ontologies.index.encoder_dir_of` only accepts one whose
    hash is the manifest's.)
    """
    built_from = read_manifest(index_dir)["store_version"]
    if built_from != store.version:
        raise ValueError(
            f"the index saved in {index_dir} was built from concept store {built_from}, but its store is now "
            f"{store.version} (a file changed after nlp.to_disk); save the pipeline again with nlp.to_disk"
        )


def point_saved_config_at(component_dir: Path, name: str, values: Mapping[str, str]) -> None:
    """Set ``values`` in the ``[components.NAME]`` block of the pipeline's saved ``config.cfg``, if there is one.

    Only when ``component_dir`` is the folder ``Language.to_disk`` gave component ``name`` (a component saved
    on its own has no pipeline config to update).
    """
    config_path = Path(component_dir).parent / "config.cfg"
    if Path(component_dir).name != name or not config_path.exists():
        return
    config = Config().from_disk(config_path, interpolate=False)
    block = config.get("components", {}).get(name)
    if block is None:
        return
    block.update(values)
    config.to_disk(config_path, interpolate=False)
