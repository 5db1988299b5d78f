"""Reranker training examples: each train mention *in its document context*, its gold concept, and negatives
mined by two retrievers, so the cross-encoder does not just learn to agree with the shipped one.

Why two retrievers: the shipped bi-encoder was fine-tuned on these same train mentions, so on them its top-1 is
nearly always gold and its other candidates are the few look-alikes it already separates; a reranker trained on
those alone learns "keep the retriever's order" (the first candidates moved acc@1 by +0.9 to +1.2 points). The base
all-MiniLM-L6-v2 never saw the task: its top-k holds the confusions an unseen mention meets (a gold concept at rank
4, a same-word concept of the other domain). Negatives alternate between the two rankings (``--negatives`` in all),
both read over the same names.

A candidate is shown as the run-time linker shows it: the concept's name closest to the mention under the *shipped*
encoder (the name the retrieval matched) plus the concept's domain (``inputs.candidate_text``; the training
dictionaries' domains: ``inputs.NAMES_TSV_DOMAINS``).

Queries: every linked entity of the NCBI-disease and BC5CDR TRAIN documents (``ner/<corpus>/train.jsonl``, dev and
test never read), with ``inputs.CONTEXT_CHARS`` of context, the retrieval query expanded from a same-document long
form as the evaluation does; plus dictionary synonym queries without context (``SYNONYM_QUERIES``: one name of a
MEDIC / HPO concept against its other names), which teach paraphrase beyond the corpora's few thousand concepts.
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
from ..biencoder.dictionary import Dictionary, DictionaryIndex, encode_normalised, load_names_tsv
from .inputs import NAMES_TSV_DOMAINS, MentionContext, candidate_text, mention_context

log = logging.getLogger("reranker.data")

#: corpus -> names TSVs (under ``synonyms/``) that make its dictionary (the bi-encoder acceptance's dictionaries)
CORPUS_DICTIONARIES = {
    "ncbi_disease": ("ctd_medic_names.tsv",),
    "bc5cdr": ("ctd_medic_names.tsv", "mesh_descriptor_labels.tsv"),
}
#: names TSV -> synonym queries drawn from it
SYNONYM_QUERIES = {"ctd_medic_names.tsv": 4000, "hpo_names.tsv": 2000}


@dataclass
class RerankExample:
    """One query (a mention in context) with its right candidate and wrong ones, as candidate texts."""

    left: str
    mention: str
    right: str
    positive: str
    negatives: list[str]
    source: str

    @property
    def context(self) -> MentionContext:
        return MentionContext(self.left, self.mention, self.right)


def tsv_domains(paths: Sequence[Path]) -> dict[str, str]:
    """concept_id -> domain of the concepts of names TSVs (``inputs.NAMES_TSV_DOMAINS``; the first file wins)."""
    out: dict[str, str] = {}
    for path in paths:
        domain = NAMES_TSV_DOMAINS.get(Path(path).name, "")
        for c in load_names_tsv([path]).concepts:
            out.setdefault(c, domain)
    return out


def read_linked_entities(path: Path) -> list[dict]:
    """Entities with concept ids of an NER JSONL file, each with its context and ``doc_id``."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = json.loads(line)
            for e in doc["entities"]:
                if e.get("concept_ids"):
                    out.append({"doc_id": doc["doc_id"], "label": e["label"], "concept_ids": e["concept_ids"],
                                "context": mention_context(doc["text"], e["start"], e["end"]),
                                "mention": e["text"]})
    return out


def _interleave(*rankings: Sequence[int]) -> list[int]:
    """Concepts of several rankings, alternating, each once, in order."""
    seen: set[int] = set()
    out: list[int] = []
    for row in zip(*rankings):
        for c in row:
            if c not in seen:
                seen.add(c)
                out.append(int(c))
    return out


class Miner:
    """Hard negatives from the shipped and the base encoder over one dictionary; names as the shipped one matches."""

    def __init__(self, d: Dictionary, shipped, base, domains: dict[str, str], cache: dict, k: int = 16):
        self.d = d
        self.shipped_encoder, self.base_encoder = shipped, base
        self.shipped = DictionaryIndex(d, shipped, cache=cache.setdefault("shipped", {}))
        self.base = DictionaryIndex(d, base, cache=cache.setdefault("base", {}))
        self.domains = [domains.get(c, "") for c in d.concepts]
        self.k = k

    def examples(self, queries: Sequence[tuple[MentionContext, str, set[int]]], negatives: int, source: str,
                 exclude_query_name: bool = False) -> list[RerankExample]:
        """``queries``: (context, retrieval text, gold concept positions)."""
        if not queries:
            return []
        texts = [q for _, q, _ in queries]
        sv = encode_normalised(self.shipped_encoder, texts)
        bv = encode_normalised(self.base_encoder, texts)
        s_top, _ = self.shipped.search(sv, self.k + 1)
        b_top, _ = self.base.search(bv, self.k + 1)
        out = []
        for (ctx, text, gold), vec, srow, brow in zip(queries, sv, s_top, b_top):
            ranked_gold = [c for c in srow if c in gold]
            pos = ranked_gold[0] if ranked_gold else max(gold, key=lambda c: float(
                np.max(self.shipped.concept_vectors(c) @ vec)))
            negs = [c for c in _interleave(srow, brow) if c not in gold][:negatives]
            names = self.shipped.best_names(vec, [pos] + negs, exclude=text if exclude_query_name else None)
            if names[0] is None:
                continue
            positive = candidate_text(names[0], self.domains[pos])
            neg_texts = [candidate_text(n, self.domains[c]) for n, c in zip(names[1:], negs)
                         if n is not None and n.lower() != names[0].lower()]
            if neg_texts:
                out.append(RerankExample(ctx.left, ctx.mention, ctx.right, positive, neg_texts, source))
        return out


def build_examples(shipped, base, data: str | Path | None = None,
                   corpora: Sequence[str] = tuple(CORPUS_DICTIONARIES), negatives: int = 7, seed: int = 13,
                   synonyms: dict[str, int] | None = None) -> tuple[list[RerankExample], dict]:
    """Examples from every corpus's train documents against its dictionary, plus synonym queries; shuffled."""
    from ..biencoder.doc_abbreviations import DocAbbreviationExpander  # spaCy: needed for mining only

    root = data_dir(data)
    cache: dict = {}
    examples: list[RerankExample] = []
    stats: dict = {}
    expander = DocAbbreviationExpander()
    for corpus in corpora:
        tsvs = [root / "synonyms" / f for f in CORPUS_DICTIONARIES[corpus]]
        d = load_names_tsv(tsvs)
        miner = Miner(d, shipped, base, tsv_domains(tsvs), cache)
        entities = read_linked_entities(root / "ner" / corpus / "train.jsonl")
        # the retrieval query: the long form a same-document mention spells out, as the evaluation queries it
        expanded = expander.expand([{"mention": e["mention"], "doc_id": e["doc_id"],
                                     "concept_ids": e["concept_ids"]} for e in entities])
        by_id = d.concepts_for_id()
        queries = []
        for e, x in zip(entities, expanded):
            gold = {c for i in e["concept_ids"] for c in by_id.get(i, [])}
            if gold:
                queries.append((e["context"], x["mention"], gold))
        ex = miner.examples(queries, negatives, f"mention:{corpus}")
        stats[corpus] = {"entities": len(entities), "examples": len(ex)}
        examples += ex
        log.info("%s: %d examples from %d linked entities", corpus, len(ex), len(entities))
    rng = random.Random(seed)
    for tsv, n in (SYNONYM_QUERIES if synonyms is None else synonyms).items():
        d = load_names_tsv([root / "synonyms" / tsv])
        domains = tsv_domains([root / "synonyms" / tsv])
        by_concept: dict[int, list[str]] = {}
        for name, c in zip(d.names, d.name_concept):
            by_concept.setdefault(c, []).append(name)
        multi = sorted(c for c, names in by_concept.items() if len(names) >= 2)
        rng.shuffle(multi)
        picked = [(rng.choice(by_concept[c]), c) for c in multi[:n]]
        miner = Miner(d, shipped, base, domains, cache)
        ex = miner.examples([(MentionContext.bare(q), q, {c}) for q, c in picked], negatives, f"synonyms:{tsv}",
                            exclude_query_name=True)
        stats[tsv] = {"examples": len(ex)}
        examples += ex
        log.info("%s: %d synonym examples", tsv, len(ex))
    rng.shuffle(examples)
    stats["examples"] = len(examples)
    return examples, stats


def save_examples(path: Path, examples: Sequence[RerankExample], stats: dict) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump({"stats": stats, "examples": [asdict(e) for e in examples]}, fh)


def load_examples(path: Path) -> tuple[list[RerankExample], dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        blob = json.load(fh)
    return [RerankExample(**e) for e in blob["examples"]], blob["stats"]
