"""Linking evaluation (acc@1/5/25, MRR) of a bi-encoder against a dictionary. Torch-free.

Protocol (BioSyn / SapBERT style):
- the dictionary is a set of concepts with names; a concept may carry alternative ids (`alt_ids`
  column of a names TSV, e.g. CTD MEDIC's OMIM/DOID ids): predicting it is a hit for any of its ids;
- a pair's gold ids may be composite (several ids): a hit on ANY gold id counts;
- retrieval is exact nearest neighbour: cosine of the mention to every name, a concept scores its
  best name; ranks are over concepts;
- MRR is computed over the top ``k`` (a gold concept below rank k contributes 0);
- ``ceiling`` is the share of pairs with at least one gold id present in the dictionary;
- train mentions may be added to the dictionary as extra names (``add_train_mentions``); report such a
  run as a separate row. A train mention is the corpus's own usage: where several concepts carry the same
  name, the one the train mentions use most wins the tie (a ``TRAIN_USAGE_PRIOR`` bonus, far below any
  real cosine difference, on the names the train mentions use);
- short forms may be expanded from long forms spelled out by other mentions of the same document
  (``expand_abbreviations``, see ``doc_abbreviations``), the pair-file stand-in for Ab3P; reported as its own row.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KS = (1, 5, 25)
#: Cosine bonus of a dictionary name in proportion to its share of the train mentions that spell it: only
#: breaks ties between identical (or numerically indistinguishable) names of different concepts.
TRAIN_USAGE_PRIOR = 1e-4


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


def load_concept_store(directory: str | Path, into: Dictionary | None = None) -> Dictionary:
    """All names of a clin-linker concept store (``ontologies.store.ConceptStore``)."""
    from ...ontologies.store import ConceptStore

    store = ConceptStore(Path(directory))
    d = into if into is not None else Dictionary()
    table = store.names()
    for key, name in zip(table.column("concept_key").to_pylist(), table.column("name").to_pylist()):
        d.add_name(key, name or "")
    return d


def load_dictionary(spec: "Dictionary | str | Path | Sequence[str | Path]") -> Dictionary:
    """A Dictionary, a concept store directory, a names TSV, or several of those (concatenated)."""
    if isinstance(spec, Dictionary):
        return spec
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    d = Dictionary()
    for s in specs:
        if Path(s).is_dir():
            load_concept_store(s, into=d)
        else:
            load_names_tsv([s], into=d)
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


def add_mentions(d: Dictionary, pairs_paths: str | Path | Sequence[str | Path]) -> Dictionary:
    """A copy of ``d`` with each single-id train mention added as a name of its concept.

    Each name a train mention spells gets ``TRAIN_USAGE_PRIOR`` x (its concept's share of the train mentions
    with that spelling), so "depression" annotated as Depressive Disorder beats the same-named MeSH heading.
    """
    d = d.copy()
    by_id = d.concepts_for_id()
    if isinstance(pairs_paths, (str, Path)):
        pairs_paths = [pairs_paths]
    uses: dict[int, int] = {}
    spelled: dict[str, int] = {}
    for p in pairs_paths:
        for r in read_pairs(p):
            if len(r["concept_ids"]) != 1:
                continue
            gold = r["concept_ids"][0]
            target = by_id.get(gold, [None])[0]
            i = d.add_name(d.concepts[target] if target is not None else gold, r["mention"])
            if i is not None:
                uses[i] = uses.get(i, 0) + 1
                key = d.names[i].lower()
                spelled[key] = spelled.get(key, 0) + 1
    for i, n in uses.items():
        d.name_prior[i] = TRAIN_USAGE_PRIOR * n / spelled[d.names[i].lower()]
    return d


class DictionaryIndex:
    """Embedded dictionary: exact cosine search, names grouped by concept (a concept = its best name)."""

    def __init__(self, d: Dictionary, encoder, batch_size: int = 256, cache: dict | None = None):
        """``cache`` (text -> vector) lets several dictionaries share one embedding pass."""
        self.d = d
        order = np.argsort(np.asarray(d.name_concept, dtype=np.int64), kind="stable")
        self.name_concept = np.asarray(d.name_concept, dtype=np.int64)[order]
        self.prior = np.asarray(d.name_prior, dtype=np.float32)[order]
        names = [d.names[i] for i in order]
        t0 = time.perf_counter()
        if cache is None:
            self.vectors = np.ascontiguousarray(_encode(encoder, names, batch_size), dtype=np.float32)
        else:
            missing = sorted({n for n in names if n not in cache})
            if missing:
                cache.update(zip(missing, _encode(encoder, missing, batch_size)))
            self.vectors = np.ascontiguousarray(np.stack([cache[n] for n in names]), dtype=np.float32)
        self.embed_seconds = time.perf_counter() - t0
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


def _encode(encoder, texts: list[str], batch_size: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    try:
        v = encoder.encode(texts, batch_size=batch_size)
    except TypeError:
        v = encoder.encode(texts)
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _scores(ranks: list[int | None], k: int) -> dict:
    n = len(ranks)
    out = {f"acc@{kk}": (sum(1 for r in ranks if r is not None and r <= kk) / n if n else 0.0) for kk in KS if kk <= k}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n if n else 0.0
    out["n"] = n
    return out


def score_orders(pairs: Sequence[dict], d: Dictionary, order_of: Callable[[dict], Sequence[int]], k: int) -> dict:
    """acc@k, MRR and ceiling, overall and per label, of the concept order ``order_of(pair)`` of every pair.

    The one scoring of the protocol: retrieval (``evaluate_linking``) and reranking (``reranker.evaluate``) differ
    only in the order they produce. A hit on any gold id counts; ranks beyond ``k`` score 0.
    """
    known = d.all_ids()
    ranks: list[int | None] = []
    per_label: dict[str, list[int | None]] = {}
    per_label_ceiling: dict[str, int] = {}
    for p in pairs:
        gold = set(p["concept_ids"])
        rank = next((r for r, c in enumerate(order_of(p)[:k], start=1) if d.ids[c] & gold), None)
        ranks.append(rank)
        label = p.get("label") or "ALL"
        per_label.setdefault(label, []).append(rank)
        per_label_ceiling[label] = per_label_ceiling.get(label, 0) + bool(gold & known)
    result = _scores(ranks, k)
    result["ceiling"] = sum(per_label_ceiling.values()) / len(pairs) if pairs else 0.0
    result["labels"] = {}
    for label in sorted(per_label):
        s = _scores(per_label[label], k)
        s["ceiling"] = per_label_ceiling[label] / len(per_label[label])
        result["labels"][label] = s
    return result


def evaluate_linking(pairs_path, dictionary, encoder, k: int = 25, add_train_mentions=None,
                     index: DictionaryIndex | None = None, batch_size: int = 256,
                     return_details: bool = False, expand_abbreviations: bool = False) -> dict:
    """Score ``encoder`` on the pairs in ``pairs_path`` against ``dictionary``.

    ``dictionary``: a Dictionary, a concept store dir, a names TSV or a list of those.
    ``encoder``: any object with ``encode(texts) -> np.ndarray`` (e.g. OnnxSentenceEncoder).
    ``add_train_mentions``: train pairs JSONL path(s) whose mentions become extra dictionary names.
    ``index``: a prebuilt DictionaryIndex (the dictionary is then taken from it; saves re-embedding).
    ``expand_abbreviations``: query short forms by a same-document long form (``doc_abbreviations``).
    Returns ``{"acc@1","acc@5","acc@25","mrr","n","ceiling","labels": {LABEL: {...}}}``;
    with ``return_details`` also "ms_per_mention", "dictionary_embed_s", "dictionary_concepts", "dictionary_names".
    """
    if index is None:
        d = load_dictionary(dictionary)
        if add_train_mentions:
            d = add_mentions(d, add_train_mentions)
        index = DictionaryIndex(d, encoder, batch_size=batch_size)
    d = index.d
    pairs = read_pairs(pairs_path) if isinstance(pairs_path, (str, Path)) else list(pairs_path)
    if expand_abbreviations:
        from .doc_abbreviations import DocAbbreviationExpander

        pairs = DocAbbreviationExpander().expand(pairs)
    mentions = sorted({p["mention"] for p in pairs})
    t0 = time.perf_counter()
    qv = _encode(encoder, mentions, batch_size)
    top, _ = index.search(qv, max(k, 25) if k >= 25 else k)
    elapsed = time.perf_counter() - t0
    row = {m: i for i, m in enumerate(mentions)}
    result = score_orders(pairs, d, lambda p: top[row[p["mention"]]], k)
    if return_details:
        result["ms_per_mention"] = 1000.0 * elapsed / max(len(mentions), 1)
        result["dictionary_embed_s"] = index.embed_seconds
        result["dictionary_concepts"] = len(d)
        result["dictionary_names"] = len(d.names)
        result["abbreviations_expanded"] = sum("mention_as_written" in p for p in pairs)
    return result


def format_row(name: str, r: dict) -> str:
    return (f"{name:<34} {r['acc@1']:.3f} {r.get('acc@5', float('nan')):.3f} {r.get('acc@25', float('nan')):.3f} "
            f"{r['mrr']:.3f} {r['n']:>6} {r.get('ceiling', float('nan')):.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="acc@1/5/25 + MRR of an ONNX bi-encoder on linking pairs")
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--dictionary", required=True, nargs="+", help="concept store dir(s) and/or names TSV(s)")
    ap.add_argument("--encoder", required=True, help="clin-linker ONNX encoder artifact dir")
    ap.add_argument("--add-train-mentions", nargs="*", default=None, metavar="TRAIN.jsonl",
                    help="add these pairs' mentions to the dictionary as names (BioSyn protocol; report separately)")
    ap.add_argument("--expand-abbreviations", action="store_true",
                    help="query a short form by the long form another mention of the same doc_id spells out "
                         "(stand-in for Ab3P on the text; report separately)")
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    from ..reranker.evaluate import add_rerank_arguments, run_rerank_cli

    add_rerank_arguments(ap)  # --rerank DIR: before/after reranking + NIL (models/reranker/evaluate.py)
    a = ap.parse_args(argv)
    from ..encoder_runtime import OnnxSentenceEncoder

    enc = OnnxSentenceEncoder(Path(a.encoder), threads=a.threads)
    if a.rerank:
        return run_rerank_cli(a, enc)
    r = evaluate_linking(a.pairs, a.dictionary, enc, k=a.k, add_train_mentions=a.add_train_mentions,
                         expand_abbreviations=a.expand_abbreviations)
    if a.json:
        print(json.dumps(r))
    else:
        print("composite gold ids: a hit on any id counts; concept alt_ids count as the concept"
              + ("; train mentions ADDED to the dictionary" if a.add_train_mentions else "")
              + ("; short forms expanded from same-document mentions" if a.expand_abbreviations else ""))
        print(f"{'':<34} acc@1 acc@5 acc@25 mrr    n      ceiling")
        print(format_row("all", r))
        for label, s in r["labels"].items():
            print(format_row(label, s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
