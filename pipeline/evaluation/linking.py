"""Linking evaluation (acc@1/5/25, MRR, ceiling) of the shipped linker on mention -> concept pairs.

What is scored is the code that ships, not a copy of it: the dictionary becomes a ``NameIndex`` (the default
index loaded from disk, or one built in memory from the given names, hnsw as shipped or exact search as an index
option), wrapped in the shipped ``CandidateGenerator`` (one text per encoder call, exact-name evidence from
``name_lookup``), and, when reranking, the shipped ``MentionReranker`` (its decisive-mention skip rule, its
calibrated order). A pair's ranks come from the candidates the ``clin_linker`` component would put on
``span._.candidates`` for that mention (asked for ``k`` of them); after reranking the reranked head is followed by
the rest of the retrieval order, so acc@25 moves only through the head, as before.

Protocol (BioSyn / SapBERT style; switches reported as their own rows):
- composite gold ids (a hit on any counts), concept alt ids (``alt_ids`` column of a names TSV) count as the
  concept, MRR over the top ``k``, ceiling = share of pairs with a gold id in the dictionary (``metrics``);
- ``add_train_mentions``: train mentions become dictionary names; where several concepts carry the same name, the
  one the train mentions use most wins the tie (a ``TRAIN_USAGE_PRIOR`` bonus on the cosine of those names, far
  below any real cosine difference);
- ``expand_abbreviations``: short forms are queried by the long form another mention of the same document spells
  out (``models.biencoder.doc_abbreviations``, the pair-file stand-in for Ab3P);
- ``fold``: only the documents of one doc fold (:func:`doc_fold`; the NIL calibration is fitted on fold A).

Input: a linking pairs JSONL, or an annotated documents JSONL (``text`` + ``entities`` with ``concept_ids``, the
shared ``ner/`` format): then each pair carries its context (``models.reranker.inputs``), which the reranker reads;
a pair without one is read as the bare mention. ``train_pairs``: every metric again on the *unseen* subset, the
pairs none of whose gold ids occurs in those train pairs (``unseen_subset``).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...models.biencoder.dictionary import Dictionary, load_names_tsv, read_pairs
from ...models.encoder_runtime import OnnxSentenceEncoder
from ...models.reranker.inputs import NAMES_TSV_DOMAINS, MentionContext, mention_context
from ...ontologies.index import HnswParams, NameIndex
from ...ontologies.store import ConceptStore
from ..candidate_generator import Candidate, CandidateGenerator
from ..dictionary_matcher import name_lookup
from .metrics import score_orders

#: Cosine bonus of a dictionary name in proportion to its share of the train mentions that spell it: only
#: breaks ties between identical (or numerically indistinguishable) names of different concepts.
TRAIN_USAGE_PRIOR = 1e-4
#: Candidates asked per mention: the protocol's deepest rank.
DEFAULT_K = 25

#: Name vectors per encoder (sha256 -> text -> vector), shared by every dictionary embedded in this process: the
#: protocol rows of one corpus (and the NIL simulation's reduced dictionaries) embed their names once.
_NAME_VECTORS: dict[str, dict[str, np.ndarray]] = {}


def load_concept_store(directory: str | Path, into: Dictionary | None = None) -> Dictionary:
    """All names of a clin-linker concept store (``ontologies.store.ConceptStore``)."""
    store = ConceptStore(Path(directory))
    d = into if into is not None else Dictionary()
    table = store.names()
    for key, name in zip(table.column("concept_key").to_pylist(), table.column("name").to_pylist()):
        d.add_name(key, name or "")
    return d


def dictionary_domains(spec: "str | Path | Sequence[str | Path]") -> dict[str, str]:
    """Concept key -> domain of the concepts of concept stores (their ``domain_id``) and of names TSVs (by file:
    ``NAMES_TSV_DOMAINS``, the reranker's training convention); the first source naming a concept wins."""
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    out: dict[str, str] = {}
    for s in specs:
        if Path(s).is_dir():
            for c in ConceptStore(Path(s)).concepts():
                out.setdefault(c.concept_key, c.domain_id)
        else:
            domain = NAMES_TSV_DOMAINS.get(Path(s).name, "")
            for c in load_names_tsv([s]).concepts:
                out.setdefault(c, domain)
    return out


def load_dictionary(spec: "Dictionary | str | Path | Sequence[str | Path]") -> Dictionary:
    """A Dictionary, a concept store directory, a names TSV, or several of those (concatenated)."""
    if isinstance(spec, Dictionary):
        return spec
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    d = Dictionary()
    for s in specs:
        if not Path(s).exists():
            raise FileNotFoundError(f"dictionary {s} does not exist: pass a names TSV or a concept store directory")
        if Path(s).is_dir():
            load_concept_store(s, into=d)
        else:
            load_names_tsv([s], into=d)
    return d


def add_train_mentions(d: Dictionary, pairs_paths: str | Path | Sequence[str | Path]) -> Dictionary:
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


def doc_fold(doc_id: object) -> str:
    """"A" or "B", stable across runs and machines (sha1 of the doc id): the calibration/held-out split."""
    return "AB"[int(hashlib.sha1(str(doc_id).encode()).hexdigest(), 16) % 2]


def select_fold(pairs: Sequence[dict], fold: str | None) -> list[dict]:
    """The pairs of documents in ``fold`` ("A", "B"; None or "all" keeps every pair)."""
    if fold in (None, "all"):
        return list(pairs)
    if fold not in ("A", "B"):
        raise ValueError(f"doc fold must be A, B or all, got {fold!r}")
    return [p for p in pairs if doc_fold(p.get("doc_id")) == fold]


def read_linking_file(path: str | Path) -> list[dict]:
    """Pairs of a linking pairs JSONL, or of an annotated documents JSONL, each entity with ids one pair (with its
    ``context``, ``doc_id`` and ``label``), in document order."""
    with open(path, encoding="utf-8") as fh:
        first = next((line for line in fh if line.strip()), "")
    if not first or "entities" not in json.loads(first):
        return read_pairs(path)
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            doc = json.loads(line)
            for e in doc.get("entities", ()):
                if not e.get("concept_ids"):
                    continue
                try:
                    context = mention_context(doc["text"], e["start"], e["end"])
                except (KeyError, ValueError) as err:
                    raise ValueError(f"{path} line {n} (doc {doc.get('doc_id')}): entity {e.get('start')}:"
                                     f"{e.get('end')} has no usable offsets into text ({err})") from None
                out.append({"mention": doc["text"][e["start"]:e["end"]], "concept_ids": list(e["concept_ids"]),
                            "doc_id": doc.get("doc_id"), "label": e.get("label"), "context": context})
    return out


def pair_context(pair: dict) -> MentionContext:
    """What the reranker reads for ``pair``: its document context, else the mention as written, bare."""
    return pair.get("context") or MentionContext.bare(pair.get("mention_as_written", pair["mention"]))


def train_ids(paths: str | Path | Sequence[str | Path]) -> set[str]:
    """Every gold id of the train pairs (or annotated documents) at ``paths``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return {i for path in paths for p in read_linking_file(path) for i in p["concept_ids"]}


def unseen_subset(pairs: Sequence[dict], seen: set[str]) -> list[dict]:
    """The pairs none of whose gold ids is in ``seen`` (a composite mention is unseen only if every id is)."""
    return [p for p in pairs if not seen.intersection(p["concept_ids"])]


def prepare_pairs(pairs: "str | Path | Sequence[dict]", expand_abbreviations: bool = False,
                  fold: str | None = None) -> list[dict]:
    """The pairs to score: read (a JSONL path) or given, short forms expanded, one doc fold kept."""
    out = read_linking_file(pairs) if isinstance(pairs, (str, Path)) else list(pairs)
    if expand_abbreviations:
        from ...models.biencoder.doc_abbreviations import DocAbbreviationExpander

        out = DocAbbreviationExpander().expand(out)
    return select_fold(out, fold)


@dataclass
class Linker:
    """The shipped retrieval over one dictionary: ``candidates`` is a ``CandidateGenerator``, as in the component.

    ``dictionary`` maps each candidate's concept key to the ids it counts for (scoring only).
    """

    dictionary: Dictionary
    candidates: CandidateGenerator
    artifacts: dict
    embed_seconds: float = 0.0
    exact: bool = False
    params: HnswParams = field(default_factory=HnswParams)
    domains: dict[str, str] = field(default_factory=dict)  # concept key -> domain, what the reranker reads

    @property
    def encoder(self) -> OnnxSentenceEncoder:
        return self.candidates.encoder

    def domain_of(self, concept_key: str) -> str:
        return self.domains.get(concept_key, "")


def _name_vectors(encoder: OnnxSentenceEncoder, names: list[str]) -> np.ndarray:
    """Unit vectors of ``names``, embedded in batches as ``index build`` embeds a store (memoised per process)."""
    cache = _NAME_VECTORS.setdefault(encoder.info.sha256, {})
    missing = [n for n in dict.fromkeys(names) if n not in cache]
    if missing:
        v = encoder.encode(missing, progress="embedding names" if len(missing) > 20_000 else None)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        cache.update(zip(missing, v))
    dim = encoder.dimension
    return np.stack([cache[n] for n in names]) if names else np.zeros((0, dim), dtype=np.float32)


def dictionary_linker(d: Dictionary, encoder: OnnxSentenceEncoder, exact: bool = False,
                      params: HnswParams = HnswParams(), threads: int | None = None,
                      source: str = "dictionary", domains: dict[str, str] | None = None) -> Linker:
    """The shipped candidate generator over an in-memory ``NameIndex`` of every name of ``d``.

    ``exact``: brute-force search instead of the hnsw graph (``params``). Train-usage priors of ``d`` (from
    :func:`add_train_mentions`) are added to the names' cosines.
    """
    keys = [d.concepts[c] for c in d.name_concept]
    started = time.perf_counter()
    vectors = _name_vectors(encoder, list(d.names))
    embed_s = time.perf_counter() - started
    prior = np.asarray(d.name_prior, dtype=np.float32)
    index = NameIndex.from_vectors(keys, list(d.names), vectors, params, exact=exact,
                                   prior=prior if prior.any() else None, threads=threads)
    generator = CandidateGenerator(index, encoder, name_lookup(zip(keys, d.names)))
    search = "exact" if exact else f"hnsw M={params.M} ef_construction={params.ef_construction} " \
                                   f"ef_search={params.ef_search}"
    artifacts = {"encoder": encoder.info.short_id,
                 "index": f"in memory, {search}, {len(d.names):,} names of {len(d):,} concepts ({source})"}
    return Linker(d, generator, artifacts, embed_s, exact, params, domains or {})


def index_linker(index_dir: str | Path | None = None, threads: int | None = None) -> Linker:
    """A built index (default: the embedded one, built on first use) loaded by the component's own loader
    (``pipeline.resources.load_resources``): the very candidate generator ``clin_linker`` links with."""
    from ..resources import load_resources

    resources = load_resources(index_dir or None, threads or 0)
    index = resources.candidates.index
    d = Dictionary()
    for key, name in zip(index.concept_keys, index.names):
        d.add_name(key, name or "")
    hnsw = index.manifest["hnsw"]
    artifacts = {"encoder": resources.encoder_id,
                 "index": f"{resources.index_dir} (store {index.manifest['store_version'][:12]}, {len(index):,} "
                          f"names, hnsw M={hnsw['M']} ef_search={hnsw['ef_search']})"}
    return Linker(d, resources.candidates, artifacts, 0.0, False,
                  HnswParams(hnsw["M"], hnsw["ef_construction"], hnsw["ef_search"]), resources.domains)


def concept_positions(d: Dictionary, keys: Sequence[str]) -> list[int]:
    """Concept positions in ``d`` of candidate concept keys (every key of the index is a concept of ``d``)."""
    return [d.concept_index(key, create=False) for key in keys]


def retrieve(linker: Linker, mentions: Sequence[str], k: int) -> tuple[dict[str, list[Candidate]], float]:
    """Each mention's top-``k`` candidates from the shipped generator, and the seconds it took."""
    started = time.perf_counter()
    results = linker.candidates(list(mentions), k=k)
    return dict(zip(mentions, results)), time.perf_counter() - started


def write_predictions(path: str | Path, rows: Sequence[dict]) -> None:
    """``--predictions``: one JSON line per distinct (mention, label): its candidates best first."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def evaluate_linking(pairs: "str | Path | Sequence[dict]", linker: Linker, k: int = DEFAULT_K,
                     expand_abbreviations: bool = False, fold: str | None = None, return_details: bool = False,
                     predictions: str | Path | None = None,
                     train_pairs: "str | Path | Sequence[str | Path] | None" = None) -> dict:
    """acc@k/MRR/ceiling (overall and per label) of the linker's retrieval order on ``pairs``.

    ``train_pairs``: also ``"unseen"``, the same scores on :func:`unseen_subset` of those train pairs' ids.

    Returns ``{"acc@1","acc@5","acc@25","mrr","n","ceiling","labels": {LABEL: {...}}}``; with ``return_details``
    also "ms_per_mention", "dictionary_embed_s", "dictionary_concepts", "dictionary_names",
    "abbreviations_expanded".
    """
    pairs = prepare_pairs(pairs, expand_abbreviations, fold)
    if not pairs:
        raise ValueError("no pairs to score" + (f" in doc fold {fold}" if fold else ""))
    d = linker.dictionary
    mentions = sorted({p["mention"] for p in pairs})
    found, seconds = retrieve(linker, mentions, k)
    order = {m: concept_positions(d, [c.concept_key for c in cands]) for m, cands in found.items()}
    result = score_orders(pairs, d, lambda p: order[p["mention"]], k)
    if train_pairs:
        result["unseen"] = score_orders(unseen_subset(pairs, train_ids(train_pairs)), d,
                                        lambda p: order[p["mention"]], k)
    if predictions:
        write_predictions(predictions, [
            {"mention": m, "candidates": [[c.concept_key, c.score] for c in found[m]],
             "exact": bool(found[m] and found[m][0].exact)} for m in mentions])
    if return_details:
        result["ms_per_mention"] = 1000.0 * seconds / max(len(mentions), 1)
        result["dictionary_embed_s"] = round(linker.embed_seconds, 1)
        result["dictionary_concepts"] = len(d)
        result["dictionary_names"] = len(d.names)
        result["abbreviations_expanded"] = sum("mention_as_written" in p for p in pairs)
    return result
