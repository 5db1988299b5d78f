"""Linking evaluation with the shipped reranker: acc@k before/after reranking, the decisive-mention shortcut's
cost, and NIL in the unseen-concept simulation (``nil``).

Retrieval is ``linking``'s (the shipped candidate generator); the top ``rerank_k`` candidates of each mention
occurrence (its text, label and context: ``linking.pair_context``) then go through the shipped
``MentionReranker.link``, as in the ``clin_linker`` component: a decisive mention (its top candidate an exact name)
is kept as retrieved, the others are ordered by calibrated probability.
The shortcut's cost is measured by a second reranker that reranks every mention (``rerank.shortcut``).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ...models.biencoder.dictionary import Dictionary
from ..candidate_generator import Candidate
from ..reranking import MentionReranker
from .linking import (
    DEFAULT_K, Linker, concept_positions, pair_context, prepare_pairs, retrieve, train_ids, unseen_subset,
    write_predictions,
)
from .metrics import score_orders
from .nil import DEFAULT_HOLDOUT, DEFAULT_SEED, nil_report, simulate_unseen


def _reranked_order(d: Dictionary, ranked: Sequence[tuple[str, float]], cands: Sequence[Candidate]) -> list[int]:
    """The component's reranked candidates, then the rest of the retrieval order (ranks below the head)."""
    head = [key for key, _ in ranked]
    seen = set(head)
    return concept_positions(d, head + [c.concept_key for c in cands if c.concept_key not in seen])


def query_key(pair: dict) -> tuple:
    """What one reranked query is: the retrieval text, the label and the context the cross-encoder reads."""
    return (pair["mention"], pair.get("label") or "", pair_context(pair))


def evaluate_reranking(pairs: "str | Path | Sequence[dict]", linker: Linker, reranker_dir: Path, k: int = DEFAULT_K,
                       rerank_k: int = 5, skip_exact: bool = False, expand_abbreviations: bool = False,
                       nil_threshold: float | None = None, fold: str | None = None, threads: int = 0,
                       nil: bool = True, holdout: float = DEFAULT_HOLDOUT, seed: int = DEFAULT_SEED,
                       predictions: str | Path | None = None,
                       train_pairs: "str | Path | Sequence[str | Path] | None" = None) -> dict:
    """acc@k/MRR after the shipped reranking (top-level keys, as :func:`evaluate_linking`), plus
    ``retrieval_only``, ``rerank`` (model, the decisive-mention shortcut and its cost, timing) and ``nil`` (the
    unseen-concept simulation, ``nil.simulate_unseen``); with ``train_pairs`` an ``unseen`` block in both the
    reranked and the retrieval-only scores.

    ``reranker_dir``: a cross-encoder artifact; its ``calibration.json`` (else the uncalibrated sigmoid) orders
    the head, ``nil_threshold`` overrides the calibrated NIL threshold.
    """
    if not 1 <= rerank_k <= k:
        raise ValueError(f"rerank k must be between 1 and k={k}, got {rerank_k}")
    pairs = prepare_pairs(pairs, expand_abbreviations, fold)
    if not pairs:
        raise ValueError("no pairs to score" + (f" in doc fold {fold}" if fold else ""))
    threshold = -1.0 if nil_threshold is None else nil_threshold
    rerankers = {skip: MentionReranker(reranker_dir, threads, rerank_k, threshold, skip_exact=skip,
                                       domain_of=linker.domain_of)
                 for skip in (True, False)}
    d = linker.dictionary
    mentions = sorted({p["mention"] for p in pairs})
    found, t_retrieve = retrieve(linker, mentions, k)
    queries = list(dict.fromkeys(query_key(p) for p in pairs))
    linked, timing = {}, {"retrieval_s": round(t_retrieve, 2), "mentions": len(mentions), "queries": len(queries)}
    for skip, reranker in rerankers.items():
        started = time.perf_counter()
        outcomes = reranker.link([ctx for _, _, ctx in queries], [lab for _, lab, _ in queries],
                                 [found[m] for m, _, _ in queries], k)
        linked[skip] = dict(zip(queries, outcomes))
        timing["rerank_s" if skip == skip_exact else "rerank_other_s"] = round(time.perf_counter() - started, 2)
    timing["reranked_queries"] = sum(o.reranked for o in linked[skip_exact].values())

    def order_of(skip: bool):
        order = {q: _reranked_order(d, o.candidates, found[q[0]]) for q, o in linked[skip].items()}
        return lambda p: order[query_key(p)]

    retrieval = {m: concept_positions(d, [c.concept_key for c in cands]) for m, cands in found.items()}
    seen = train_ids(train_pairs) if train_pairs else None
    unseen = unseen_subset(pairs, seen) if seen is not None else None

    def scored(order) -> dict:
        out = score_orders(pairs, d, order, k)
        if unseen is not None:
            out["unseen"] = score_orders(unseen, d, order, k)
        return out

    result = scored(order_of(skip_exact))
    other = score_orders(pairs, d, order_of(not skip_exact), k)
    result["retrieval_only"] = scored(lambda p: retrieval[p["mention"]])
    main = rerankers[skip_exact]
    result["rerank"] = {
        "model": main.model_id, "rerank_k": rerank_k, "skip_exact": skip_exact,
        "calibrated": bool(main.calibrator.meta.get("fitted", True)),
        "decisive_mentions": sum(bool(cands and cands[0].exact) for cands in found.values()),
        "mentions": len(mentions),
        "shortcut": {"acc@1_skip_exact": (result if skip_exact else other)["acc@1"],
                     "acc@1_rerank_all": (other if skip_exact else result)["acc@1"]},
        "timing": timing,
    }
    if predictions:
        write_predictions(predictions, [
            {"mention": m, "label": lab, "context": [ctx.left, ctx.mention, ctx.right],
             "candidates": [list(c) for c in linked[skip_exact][(m, lab, ctx)].candidates],
             "concept": linked[skip_exact][(m, lab, ctx)].concept,
             "reranked": linked[skip_exact][(m, lab, ctx)].reranked}
            for m, lab, ctx in queries])
    if nil:
        sim = simulate_unseen(linker, pairs, main, holdout, seed)
        result["nil"] = {**nil_report(sim, main.calibrator), "holdout": holdout, "seed": seed,
                         "removed_concepts": sim["removed_concepts"]}
    return result
