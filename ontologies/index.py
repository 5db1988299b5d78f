"""The retrieval index: every name of a concept store embedded by the encoder, in an hnswlib index.

An index directory holds ``names.hnsw`` (cosine space), ``labels.parquet`` (hnsw label -> concept_key,
name) and ``manifest.json`` (encoder id + hash, store version, counts, hnsw parameters). The manifest
is what :func:`index_is_current` compares, so a new encoder or store triggers a rebuild.

A query can be restricted to one vocabulary (``NameIndex.query(..., vocabulary="ICD10CM")``) without a second
pass over the index: a vocabulary that is most of the index is searched through the shared graph with hnswlib's
``filter`` (a per-label mask); a smaller one exactly, over its own vectors (:data:`EXACT_VOCABULARY_NAMES`).
Measured figures (default index, 2,000 mention strings): docs/linking.md, "Targets: one code per vocabulary".
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..models.encoder_runtime import OnnxSentenceEncoder
from .store import ConceptStore

INDEX_FORMAT = 1

#: A vocabulary with at most this many names (and not the whole index) is searched exactly, over its own vectors
#: copied out of the graph on its first query (~0.07 ms a name: 2.8 s for HPO's 40k), instead of through the shared
#: graph with a filter. hnsw with a filter stops only once ``ef`` allowed names are found, so the smaller a
#: vocabulary's share of the index, the more of the graph it walks, calling the Python filter at every label it
#: visits. On the default index (246k names; hnsw queries of 40 names, one thread): HPO's 16% through the filter
#: 210 mentions/s against 1,270 unfiltered, 2,000 random labels allowed 13/s. The candidate generator searching
#: HPO's vectors exactly: 1,500/s. Exact cost grows with the names, the filter's with the share left out, hence a
#: size bound: ICD10CM (206k names, 84%) goes through the filter, at 840/s in the generator.
EXACT_VOCABULARY_NAMES = 60_000
#: Query rows per matrix product of the exact vocabulary search: bounds its scratch memory (rows x names floats).
EXACT_QUERY_ROWS = 128


def vocabulary_of(concept_key: str) -> str:
    """The vocabulary of a store key: its prefix before the first ':' (``HPO:HP:0000822`` -> ``HPO``)."""
    return concept_key.split(":", 1)[0]


@dataclass(frozen=True)
class HnswParams:
    """hnswlib build/query settings; ef_search trades speed for recall at query time."""

    M: int = 32
    ef_construction: int = 200
    ef_search: int = 128


def build_index(
    store_dir: Path, encoder_dir: Path, out_dir: Path, params: HnswParams = HnswParams(), threads: int | None = None
) -> dict:
    """Embed every name of the store and write an index directory; returns its manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ConceptStore(store_dir)
    encoder = OnnxSentenceEncoder(encoder_dir, threads=threads)
    names = store.names()
    keys = names.column("concept_key").to_pylist()
    texts = names.column("name").to_pylist()
    started = time.perf_counter()
    vectors = encoder.encode(texts, progress="embedding names")
    embed_s = time.perf_counter() - started

    started = time.perf_counter()
    print(f"building hnsw index over {len(texts):,} names ...", flush=True)
    index = _hnsw_index(vectors, params, threads)
    build_s = time.perf_counter() - started

    index.save_index(str(out_dir / "names.hnsw"))
    pq.write_table(pa.table({"concept_key": keys, "name": texts}), out_dir / "labels.parquet")
    manifest = {
        "format": INDEX_FORMAT,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # relative to the index directory, so a home directory can be moved or mounted elsewhere
        "store_dir": os.path.relpath(Path(store_dir).resolve(), out_dir.resolve()),
        "store_version": store.version,
        "encoder": {"model_id": encoder.info.model_id, "sha256": encoder.info.sha256,
                    "dir": str(encoder.info.directory.resolve())},
        "counts": {"names": len(texts), "concepts": len(store)},
        "hnsw": {"space": "cosine", "dim": encoder.dimension, "M": params.M,
                 "ef_construction": params.ef_construction, "ef_search": params.ef_search},
        "timing_s": {"embed": round(embed_s, 1), "hnsw_build": round(build_s, 1)},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _hnsw_index(vectors: np.ndarray, params: HnswParams, threads: int | None = None) -> hnswlib.Index:
    """The hnsw graph over name vectors (label = row); one construction for built and in-memory indexes."""
    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=max(len(vectors), 1), ef_construction=params.ef_construction, M=params.M,
                     random_seed=100)
    if threads:
        index.set_num_threads(threads)
    index.add_items(vectors, np.arange(len(vectors)))
    return index


def read_manifest(index_dir: Path) -> dict:
    path = Path(index_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{index_dir} is not a clin-linker index (no manifest.json); "
                                "build one with `clin-linker index build`")
    return json.loads(path.read_text())


def store_dir_of(index_dir: Path) -> Path:
    """The concept store an index was built from (its manifest keeps the path relative to the index)."""
    return (Path(index_dir) / read_manifest(index_dir)["store_dir"]).resolve()


def encoder_dir_of(index_dir: Path) -> Path:
    """The encoder an index was built with: queries must be embedded by the very same model.

    The recorded directory (absolute, or relative to the index as in a saved spaCy pipeline's copy) is used
    when it still holds that encoder (same hash); otherwise the shipped artifacts are searched by hash, so an
    index survives a re-install of the package.
    """
    from ..models.artifacts import ARTIFACTS_DIR, read_artifact

    wanted = read_manifest(index_dir)["encoder"]
    recorded = Path(index_dir) / wanted["dir"]
    candidates = [recorded] + sorted(p.parent for p in ARTIFACTS_DIR.glob("*/artifact.json"))
    for directory in candidates:
        if (directory / "artifact.json").exists() and read_artifact(directory).sha256 == wanted["sha256"]:
            return directory
    raise FileNotFoundError(
        f"index {index_dir} was built with encoder {wanted['model_id']} (sha256 {wanted['sha256'][:12]}), "
        "which is not installed here; rebuild the index with `clin-linker index build`"
    )


def index_is_current(index_dir: Path, store_dir: Path, encoder_dir: Path) -> bool:
    """True when ``index_dir`` was built from exactly this store content and this encoder file."""
    from ..models.artifacts import read_artifact

    try:
        manifest = read_manifest(index_dir)
        store_version = ConceptStore(store_dir).version
    except (FileNotFoundError, ValueError):
        return False
    return (
        manifest.get("format") == INDEX_FORMAT
        and manifest["store_version"] == store_version
        and manifest["encoder"]["sha256"] == read_artifact(encoder_dir).sha256
    )


class NameIndex:
    """A loaded index: nearest names of a query vector, with their concept keys.

    Loaded from an index directory (what the linker uses), or built in memory from name vectors
    (:meth:`from_vectors`, what ``clin-linker eval linking --dictionary`` scores), optionally with exact search.
    """

    def __init__(self, index_dir: Path):
        self.directory = Path(index_dir)
        self.manifest = read_manifest(self.directory)
        hnsw = self.manifest["hnsw"]
        self.index = hnswlib.Index(space=hnsw["space"], dim=hnsw["dim"])
        self.index.load_index(str(self.directory / "names.hnsw"))
        self.index.set_ef(hnsw["ef_search"])
        labels = pq.read_table(self.directory / "labels.parquet")
        self.concept_keys: list[str] = labels.column("concept_key").to_pylist()
        self.names: list[str] = labels.column("name").to_pylist()
        self.exact = False
        self.prior: np.ndarray | None = None
        self._index_vocabularies()

    @classmethod
    def from_vectors(cls, concept_keys: list[str], names: list[str], vectors: np.ndarray,
                     params: HnswParams = HnswParams(), exact: bool = False, prior: np.ndarray | None = None,
                     threads: int | None = None) -> "NameIndex":
        """An in-memory index over unit ``vectors`` (row i = ``names[i]`` of ``concept_keys[i]``).

        ``exact``: brute-force cosine search (hnswlib's ``BFIndex``) instead of the hnsw graph: the retrieval the
        graph approximates. ``prior``: a per-name bonus added to the cosine (the evaluation's train-usage
        tie-break between same-named concepts); None for the plain cosine, as a built index has.
        """
        if not len(concept_keys) == len(names) == len(vectors):
            raise ValueError(f"{len(concept_keys)} concept keys, {len(names)} names and {len(vectors)} vectors")
        self = cls.__new__(cls)
        self.directory = None
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self.manifest = {"counts": {"names": len(names), "concepts": len(set(concept_keys))},
                         "hnsw": {"space": "cosine", "dim": dim, "M": params.M,
                                  "ef_construction": params.ef_construction, "ef_search": params.ef_search},
                         "search": "exact" if exact else "hnsw"}
        if exact:
            self.index = hnswlib.BFIndex(space="cosine", dim=dim)
            self.index.init_index(max_elements=max(len(vectors), 1))
            self.index.add_items(vectors, np.arange(len(vectors)))
        else:
            self.index = _hnsw_index(vectors, params, threads)
            self.index.set_ef(params.ef_search)
        self.exact = exact
        self.concept_keys = list(concept_keys)
        self.names = list(names)
        self.prior = None if prior is None else np.asarray(prior, dtype=np.float32)
        self._index_vocabularies()
        if exact:  # hnswlib's BFIndex has no get_items, and its filter returns one label several times (0.8.0)
            self._vocabulary_vectors = {v: vectors[labels] for v, labels in self._vocabulary_labels.items()}
        return self

    def _index_vocabularies(self) -> None:
        """Labels per vocabulary, what ``query(vocabulary=...)`` searches (masks and vectors come on first use)."""
        labels: dict[str, list[int]] = {}
        for label, key in enumerate(self.concept_keys):
            labels.setdefault(vocabulary_of(key), []).append(label)
        self._vocabulary_labels = {v: np.asarray(labels[v], dtype=np.int64) for v in sorted(labels)}
        self._filters: dict[str, object] = {}
        self._vocabulary_vectors: dict[str, np.ndarray] = {}
        self._vocabulary_lock = threading.Lock()

    @property
    def vocabularies(self) -> tuple[str, ...]:
        """The vocabulary ids of the names in the index, sorted."""
        return tuple(self._vocabulary_labels)

    def vocabulary_size(self, vocabulary: str) -> int:
        """How many names of ``vocabulary`` the index holds; an unknown vocabulary is an error naming the known."""
        labels = self._vocabulary_labels.get(vocabulary)
        if labels is None:
            where = self.directory or "this in-memory index"
            raise ValueError(f"index {where} holds no names of vocabulary {vocabulary!r}; it holds "
                             f"{', '.join(self.vocabularies) or 'no names at all'}")
        return len(labels)

    def __len__(self) -> int:
        return len(self.concept_keys)

    def query(self, vectors: np.ndarray, k: int, ef: int = 0,
              vocabulary: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (labels, cosine similarities), each (n, k'), k' = min(k, size), best first.

        ``ef``: the hnsw search breadth (at least the index's ``ef_search`` and ``k``). At a fixed breadth the top
        ``k`` are the first ``k`` of any larger ``k``, so callers that keep different numbers of neighbours agree
        on the best ones; exact search ignores it. ``vocabulary``: only names of that vocabulary (size = its name
        count), found in the same single search (see :data:`EXACT_VOCABULARY_NAMES` for how); the same breadth
        rule holds.
        """
        size = len(self) if vocabulary is None else self.vocabulary_size(vocabulary)
        k = min(k, size)
        if size == len(self):  # no vocabulary asked, or the index holds nothing else
            labels, distances = self._knn(vectors, k, ef)
        elif self.exact or size <= EXACT_VOCABULARY_NAMES:
            labels, distances = self._exact_vocabulary_knn(vectors, k, vocabulary)
        else:
            labels, distances = self._knn(vectors, k, ef, self._filter(vocabulary))
        sims = 1.0 - distances
        if self.prior is not None:
            sims = sims + self.prior[labels]
            order = np.argsort(-sims, axis=1, kind="stable")
            labels, sims = np.take_along_axis(labels, order, axis=1), np.take_along_axis(sims, order, axis=1)
        return labels, sims

    def _knn(self, vectors: np.ndarray, k: int, ef: int, allowed=None) -> tuple[np.ndarray, np.ndarray]:
        """One search of the whole index (graph or brute force), restricted to the labels ``allowed`` accepts
        (graph only)."""
        if not self.exact:
            self.index.set_ef(max(self.manifest["hnsw"]["ef_search"], k, ef))
        if allowed is None:
            return self.index.knn_query(vectors, k=k)
        # hnswlib calls a Python filter under the GIL: more threads only contend for it
        return self.index.knn_query(vectors, k=k, num_threads=1, filter=allowed)

    def _filter(self, vocabulary: str):
        """hnswlib's filter for ``vocabulary``: a bound ``list.__getitem__`` over a per-label bool mask, the
        cheapest Python callable per visited label (a numpy mask's ``__getitem__`` was 1.4x slower)."""
        allowed = self._filters.get(vocabulary)
        if allowed is None:
            mask = np.zeros(len(self), dtype=bool)
            mask[self._vocabulary_labels[vocabulary]] = True
            allowed = self._filters.setdefault(vocabulary, mask.tolist().__getitem__)
        return allowed

    def _exact_vocabulary_knn(self, vectors: np.ndarray, k: int, vocabulary: str) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top ``k`` among ``vocabulary``'s names (labels, distances as hnswlib returns them), ordered by
        similarity then label, so that the best are the same whatever ``k``."""
        labels = self._vocabulary_labels[vocabulary]
        names = self._vectors_of(vocabulary)
        queries = np.asarray(vectors, dtype=np.float32)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        out_labels = np.empty((len(queries), k), dtype=np.uint64)
        out_sims = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), EXACT_QUERY_ROWS):
            sims = queries[start:start + EXACT_QUERY_ROWS] @ names.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.lexsort((top, -top_sims), axis=1)  # by similarity, then label (positions = labels' order)
            top = np.take_along_axis(top, order, axis=1)
            out_labels[start:start + len(top)] = labels[top]
            out_sims[start:start + len(top)] = np.take_along_axis(top_sims, order, axis=1)
        return out_labels, 1.0 - out_sims

    def _vectors_of(self, vocabulary: str) -> np.ndarray:
        """``vocabulary``'s unit name vectors, in label order, copied out of the graph on first use."""
        with self._vocabulary_lock:
            names = self._vocabulary_vectors.get(vocabulary)
            if names is None:
                names = np.asarray(self.index.get_items(self._vocabulary_labels[vocabulary], return_type="numpy"),
                                   dtype=np.float32)
                names /= np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-12)
                self._vocabulary_vectors[vocabulary] = names
            return names
