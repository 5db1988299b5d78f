"""Dictionaries of concept names for training: loading names TSVs and linking pairs, and an exact-search index.

Training needs these building blocks without the product's evaluation (``pipeline.evaluation``, which scores
through the shipped candidate generator): the quick dev trend of bi-encoder training and the hard-negative mining
of reranker training search a dictionary exactly, by cosine over every name, a concept scoring its best name.

- a dictionary is a set of concepts with names; a concept may carry alternative ids (`alt_ids` column of a names
  TSV, e.g. CTD MEDIC's OMIM/DOID ids): predicting it is a hit for any of its ids;
- a name may carry a small ``name_prior`` (the evaluation's train-usage tie-break), added to its cosine.
"""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Dictionary:
    """Concepts and their names. ``ids[c]`` are all ids that concept ``c`` counts for (its own first)."""

    concepts: list[str] = field(default_factory=list)
    ids: list[set[str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    name_concept: list[int] = field(default_factory=list)
    name_prior: list[float] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _seen: dict[tuple[int, str], int] = field(default_factory=dict)

    def concept_index(self, concept_id: str, create: bool = True) -> int | None:
        """Position of ``concept_id`` (added when new and ``create``; else None when unknown)."""
        i = self._index.get(concept_id)
        if i is None and create:
            i = len(self.concepts)
            self._index[concept_id] = i
            self.concepts.append(concept_id)
            self.ids.append({concept_id})
        return i

    def add_name(self, concept_id: str, name: str, alt_ids: Iterable[str] = ()) -> int | None:
        """Add a name (case-insensitively once per concept); returns its position in ``names``."""
        name = " ".join(name.split())
        c = self.concept_index(concept_id)
        self.ids[c].update(a for a in alt_ids if a)
        if not name:
            return None
        key = (c, name.lower())
        if key not in self._seen:
            self._seen[key] = len(self.names)
            self.names.append(name)
            self.name_concept.append(c)
            self.name_prior.append(0.0)
        return self._seen[key]

    def all_ids(self) -> set[str]:
        return set().union(*self.ids) if self.ids else set()

    def concepts_for_id(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for c, ids in enumerate(self.ids):
            for i in ids:
                out.setdefault(i, []).append(c)
        return out

    def copy(self) -> "Dictionary":
        return Dictionary(list(self.concepts), [set(s) for s in self.ids], list(self.names),
                          list(self.name_concept), list(self.name_prior), dict(self._index), dict(self._seen))

    def __len__(self) -> int:
        return len(self.concepts)


def load_names_tsv(paths: str | Path | Sequence[str | Path], into: Dictionary | None = None) -> Dictionary:
    """Concatenate names TSVs (header ``concept_id  name  ...`` with optional ``alt_ids``, `|`-separated)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    d = into if into is not None else Dictionary()
    csv.field_size_limit(sys.maxsize)
    for path in paths:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or reader.fieldnames[:2] != ["concept_id", "name"]:
                raise ValueError(f"{path}: a names TSV starts with the columns concept_id, name")
            for row in reader:
                cid = (row.get("concept_id") or "").strip()
                if not cid:
                    continue
                alt = (row.get("alt_ids") or "").split("|")
                d.add_name(cid, row.get("name") or "", [a.strip() for a in alt])
    return d


def read_pairs(path: str | Path) -> list[dict]:
    """Linking pairs JSONL: ``{"mention", "concept_ids": [...], "label"?}``; pairs without ids are skipped."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                if r.get("concept_ids"):
                    out.append(r)
    return out


def encode_normalised(encoder, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Unit vectors of ``texts`` from any ``encode(texts)`` object (ONNX artifact or a torch model in training)."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    try:
        v = encoder.encode(texts, batch_size=batch_size)
    except TypeError:
        v = encoder.encode(texts)
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, 1e-12)


class DictionaryIndex:
    """Embedded dictionary: exact cosine search, names grouped by concept (a concept = its best name)."""

    def __init__(self, d: Dictionary, encoder, batch_size: int = 256, cache: dict | None = None):
        """``cache`` (text -> vector) lets several dictionaries share one embedding pass."""
        self.d = d
        order = np.argsort(np.asarray(d.name_concept, dtype=np.int64), kind="stable")
        self.name_concept = np.asarray(d.name_concept, dtype=np.int64)[order]
        self.prior = np.asarray(d.name_prior, dtype=np.float32)[order]
        names = [d.names[i] for i in order]
        if cache is None:
            self.vectors = np.ascontiguousarray(encode_normalised(encoder, names, batch_size), dtype=np.float32)
        else:
            missing = sorted({n for n in names if n not in cache})
            if missing:
                cache.update(zip(missing, encode_normalised(encoder, missing, batch_size)))
            self.vectors = np.ascontiguousarray(np.stack([cache[n] for n in names]), dtype=np.float32)
        self.names = names
        self.starts = np.flatnonzero(np.r_[True, self.name_concept[1:] != self.name_concept[:-1]])
        self.concept_of_start = self.name_concept[self.starts]
        ends = np.r_[self.starts[1:], len(names)]
        self._span = {int(c): (int(s), int(e)) for c, s, e in zip(self.concept_of_start, self.starts, ends)}

    def best_names(self, query: np.ndarray, concepts: Sequence[int], exclude: str | None = None) -> list[str | None]:
        """Per concept, its name closest to ``query`` (a normalised vector): the name the retrieval matched.

        ``exclude``: a name (case-insensitive) never returned; None where a concept has no other name.
        """
        out: list[str | None] = []
        for c in concepts:
            s, e = self._span[int(c)]
            sims = self.vectors[s:e] @ query + self.prior[s:e]
            if exclude is not None:
                sims = np.where([n.lower() == exclude.lower() for n in self.names[s:e]], -np.inf, sims)
            j = int(np.argmax(sims))
            out.append(self.names[s + j] if np.isfinite(sims[j]) else None)
        return out

    def concept_vectors(self, concept: int) -> np.ndarray:
        """The vectors of one concept's names."""
        return self.vectors[slice(*self._span[int(concept)])]

    def search(self, queries: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Top-k concept indices and scores per query (best first)."""
        k = min(k, len(self.starts))
        top = np.zeros((len(queries), k), dtype=np.int64)
        top_s = np.zeros((len(queries), k), dtype=np.float32)
        for s in range(0, len(queries), chunk):
            sims = queries[s : s + chunk] @ self.vectors.T + self.prior
            per_concept = np.maximum.reduceat(sims, self.starts, axis=1)
            part = np.argpartition(-per_concept, k - 1, axis=1)[:, :k]
            ps = np.take_along_axis(per_concept, part, axis=1)
            o = np.argsort(-ps, axis=1, kind="stable")
            top[s : s + chunk] = self.concept_of_start[np.take_along_axis(part, o, axis=1)]
            top_s[s : s + chunk] = np.take_along_axis(ps, o, axis=1)
        return top, top_s
