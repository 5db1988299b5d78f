"""Reranker training examples: each train mention with its gold concept's name and hard negatives mined by the
bi-encoder.

A candidate is shown to the cross-encoder as the name the retrieval matched: the concept's name closest to the
query under the bi-encoder (``DictionaryIndex.best_names``). The pipeline's candidate generator hands the
reranker the same matched name, so training and use see the same inputs. Negatives are the best-ranked other concepts of the
bi-encoder's top-k (no concept that carries a gold id), i.e. exactly the confusions reranking must fix.

Queries: the single- and multi-id mentions of the NCBI-disease and BC5CDR TRAIN splits (dev/test never read),
short forms expanded from same-document mentions as the evaluation does, deduplicated per (query, gold ids);
plus synonym queries (``SYNONYM_QUERIES``): one name of a MEDIC / HPO concept against its other names.
Dictionaries as in the bi-encoder acceptance: CTD MEDIC names (NCBI), MEDIC + MeSH descriptor labels (BC5CDR).
"""
from __future__ import annotations

import gzip
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..biencoder.data import data_dir
from ..biencoder.dictionary import Dictionary, DictionaryIndex, load_names_tsv, read_pairs

log = logging.getLogger("reranker.data")

#: corpus -> names TSVs (under ``synonyms/``) that make its dictionary
CORPUS_DICTIONARIES = {
    "ncbi_disease": ("ctd_medic_names.tsv",),
    "bc5cdr": ("ctd_medic_names.tsv", "mesh_descriptor_labels.tsv"),
}


#: names TSV -> synonym queries drawn from it (MEDIC: the corpora's diseases; HPO: the shipped store's findings)
SYNONYM_QUERIES = {"ctd_medic_names.tsv": 12000, "hpo_names.tsv": 8000}


@dataclass
class RerankExample:
    query: str
    positive: str
    negatives: list[str]
    source: str


def mine_examples(encoder, index: DictionaryIndex, pairs: Sequence[dict], source: str, k: int = 16,
                  negatives: int = 7) -> list[RerankExample]:
    """One example per distinct (mention, gold ids): gold concept's matched name vs the top-k others' names.

    A pair whose gold ids are absent from the dictionary is skipped (nothing to learn as positive).
    """
    d: Dictionary = index.d
    by_id = d.concepts_for_id()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = []
    for p in pairs:
        key = (p["mention"], tuple(sorted(p["concept_ids"])))
        gold = [c for i in key[1] for c in by_id.get(i, [])]
        if key in seen or not gold:
            continue
        seen.add(key)
        todo.append((p["mention"], set(gold)))
    if not todo:
        return []
    qv = np.asarray(encoder.encode([q for q, _ in todo]), dtype=np.float32)
    qv /= np.maximum(np.linalg.norm(qv, axis=1, keepdims=True), 1e-12)
    top, _ = index.search(qv, k)
    out = []
    for (query, gold), vec, row in zip(todo, qv, top):
        ranked_gold = [c for c in row if c in gold]
        pos_concept = ranked_gold[0] if ranked_gold else max(gold, key=lambda c: float(
            np.max(index.concept_vectors(c) @ vec)))
        negs = [c for c in row if c not in gold][:negatives]
        names = index.best_names(vec, [pos_concept] + negs)
        # a negative spelled exactly like the positive teaches nothing a cross-encoder can learn
        neg_names = [n for n in names[1:] if n.lower() != names[0].lower()]
        if neg_names:
            out.append(RerankExample(query, names[0], neg_names, source))
    return out


def mine_synonym_examples(encoder, index: DictionaryIndex, n: int, source: str, seed: int = 13, k: int = 16,
                          negatives: int = 7) -> list[RerankExample]:
    """Synonym examples: a concept's name as query, another of its names as positive (never the query itself).

    They teach the reranker vocabulary-wide paraphrase (word order, inflection, eponyms) beyond what the few
    thousand corpus mentions show; negatives are the bi-encoder's best other concepts, as for mentions.
    """
    d = index.d
    rng = random.Random(seed)
    by_concept: dict[int, list[str]] = {}
    for name, c in zip(d.names, d.name_concept):
        by_concept.setdefault(c, []).append(name)
    multi = sorted(c for c, names in by_concept.items() if len(names) >= 2)
    rng.shuffle(multi)
    todo = [(rng.choice(by_concept[c]), c) for c in multi[:n]]
    if not todo:
        return []
    qv = np.asarray(encoder.encode([q for q, _ in todo]), dtype=np.float32)
    qv /= np.maximum(np.linalg.norm(qv, axis=1, keepdims=True), 1e-12)
    top, _ = index.search(qv, k + 1)
    out = []
    for (query, gold), vec, row in zip(todo, qv, top):
        negs = [c for c in row if c != gold][:negatives]
        names = index.best_names(vec, [gold] + negs, exclude=query)
        pos = names[0]
        neg_names = [m for m in names[1:] if m is not None and pos is not None and m.lower() != pos.lower()]
        if pos is not None and neg_names:
            out.append(RerankExample(query, pos, neg_names, source))
    return out


def build_examples(encoder, data: str | Path | None = None, corpora: Sequence[str] = tuple(CORPUS_DICTIONARIES),
                   k: int = 16, negatives: int = 7, seed: int = 13) -> tuple[list[RerankExample], dict]:
    """Examples from every corpus's train split against its dictionary, shuffled (seeded)."""
    from ..biencoder.doc_abbreviations import DocAbbreviationExpander  # spaCy: needed for mining only

    root = data_dir(data)
    cache: dict = {}
    examples: list[RerankExample] = []
    stats: dict = {}
    expander = DocAbbreviationExpander()
    for corpus in corpora:
        d = load_names_tsv([root / "synonyms" / f for f in CORPUS_DICTIONARIES[corpus]])
        index = DictionaryIndex(d, encoder, cache=cache)
        pairs = expander.expand(read_pairs(root / "linking" / corpus / "train.jsonl"))
        ex = mine_examples(encoder, index, pairs, f"mention:{corpus}", k=k, negatives=negatives)
        stats[corpus] = {"train_pairs": len(pairs), "examples": len(ex)}
        examples += ex
        log.info("%s: %d examples from %d train pairs", corpus, len(ex), len(pairs))
    for tsv, n in SYNONYM_QUERIES.items():
        d = load_names_tsv([root / "synonyms" / tsv])
        ex = mine_synonym_examples(encoder, DictionaryIndex(d, encoder, cache=cache), n, f"synonyms:{tsv}",
                                   seed=seed, negatives=negatives)
        stats[tsv] = {"examples": len(ex)}
        examples += ex
        log.info("%s: %d synonym examples", tsv, len(ex))
    random.Random(seed).shuffle(examples)
    stats["examples"] = len(examples)
    return examples, stats


def save_examples(path: Path, examples: Sequence[RerankExample], stats: dict) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump({"stats": stats, "examples": [asdict(e) for e in examples]}, fh)


def load_examples(path: Path) -> tuple[list[RerankExample], dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        blob = json.load(fh)
    return [RerankExample(**e) for e in blob["examples"]], blob["stats"]
