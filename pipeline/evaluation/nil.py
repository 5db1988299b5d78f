"""NIL: the unseen-concept simulation, its report, and the NIL calibration fitted on it.

Unseen-concept simulation: a seeded ``holdout`` share of the distinct gold concepts of the pairs is removed from
the dictionary (with all its names), the shipped retrieval + reranking run again over what is left, and a mention
abstains (NIL) when its best calibrated probability is below the threshold. A mention is truly NIL when none of its
gold ids is left in the dictionary (held out, or never there: a pair beyond the ceiling is NIL too). NIL precision
= truly-NIL share of the abstained mentions; recall = abstained share of the truly-NIL mentions. Also reported as
*abstention* precision/recall, where an abstention is right on any mention linking would get wrong (truly NIL, or
the linked concept is not gold): what keeps wrong concepts out of NOTE_NLP.

A decisive mention (its top candidate an exact name, the ``MentionReranker`` skip rule) is linked as retrieved
with probability 1.0. Every other mention's head is scored by the cross-encoder exactly as the component scores it
(``MentionReranker.head_logits``, candidates' cosines as the component passes them), so the calibration
(``models.reranker.calibration``) is fitted on the inputs it will see.

Calibration is fitted on doc fold A (``linking.doc_fold``), so fold B is the held-out view of anything that
depends on it.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...models.biencoder.dictionary import Dictionary
from ...models.reranker.calibration import (
    NilCalibrator, candidate_features, choose_threshold, fit_calibrator, nil_precision_recall,
)
from ...models.reranker.scoring import rerank
from ..reranking import MentionReranker
from .linking import (
    Linker, dictionary_domains, dictionary_linker, load_dictionary, pair_context, prepare_pairs, retrieve,
)

#: Default share of gold concepts removed from the dictionary in the unseen-concept simulation.
DEFAULT_HOLDOUT = 0.2
DEFAULT_SEED = 13


def without_concepts(d: Dictionary, removed: set[int]) -> Dictionary:
    """A copy of ``d`` without the concepts at positions ``removed`` (their names and ids gone)."""
    out = Dictionary()
    for c in range(len(d)):
        if c not in removed:
            out.concept_index(d.concepts[c])
            out.ids[-1].update(d.ids[c])
    for name, c, prior in zip(d.names, d.name_concept, d.name_prior):
        if c not in removed:
            i = out.add_name(d.concepts[c], name)
            if i is not None:
                out.name_prior[i] = prior
    return out


def holdout_concepts(d: Dictionary, pairs: Sequence[dict], share: float, seed: int) -> set[int]:
    """A seeded ``share`` of the dictionary concepts that are gold for at least one pair."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"holdout share must be in (0, 1), got {share}")
    by_id = d.concepts_for_id()
    gold = sorted({c for p in pairs for i in p["concept_ids"] for c in by_id.get(i, [])})
    rng = random.Random(seed)
    return set(rng.sample(gold, round(share * len(gold))))


def simulate_unseen(linker: Linker, pairs: Sequence[dict], reranker: MentionReranker,
                    holdout: float = DEFAULT_HOLDOUT, seed: int = DEFAULT_SEED) -> dict:
    """Remove a held-out share of gold concepts and rerun the shipped retrieval + cross-encoder.

    The reduced dictionary gets the linker's index option (exact or hnsw). Returns per pair ``is_nil`` and
    ``heads``: (logits, cosines, gold flags) of its top ``rerank_k`` in retrieval order, or (None, None, gold flag
    of the top concept) for a mention linked as retrieved (decisive, or without candidates); the per-candidate
    ``features``/``labels`` of every distinct reranked (mention, gold) (what :func:`fit_calibrator` learns from);
    and counts. Nothing here depends on a calibrator: :func:`outcomes` applies one.
    """
    d = linker.dictionary
    removed = holdout_concepts(d, pairs, holdout, seed)
    reduced = without_concepts(d, removed)
    sim_linker = dictionary_linker(reduced, linker.encoder, linker.exact, linker.params, source="NIL simulation",
                                   domains=linker.domains)
    mentions = sorted({p["mention"] for p in pairs})
    found, _ = retrieve(sim_linker, mentions, reranker.rerank_k)
    queries = list(dict.fromkeys((p["mention"], p.get("label") or "", pair_context(p)) for p in pairs))
    scored = [q for q in queries if found[q[0]] and not (reranker.skip_exact and found[q[0]][0].exact)]
    logits = dict(zip(scored, reranker.head_logits([ctx for _, _, ctx in scored], [lab for _, lab, _ in scored],
                                                   [found[m] for m, _, _ in scored]))) if scored else {}
    by_id = reduced.concepts_for_id()
    heads, is_nil, feats, labels = [], [], [], []
    done: set[tuple[str, tuple[str, ...]]] = set()
    for p in pairs:
        gold = set(p["concept_ids"])
        cands = found[p["mention"]]
        flags = np.array([bool(reduced.ids[reduced.concept_index(c.concept_key, create=False)] & gold)
                          for c in cands[: reranker.rerank_k]], dtype=bool)
        is_nil.append(not any(i in by_id for i in gold))
        query = (p["mention"], p.get("label") or "", pair_context(p))
        if query not in logits:
            heads.append((None, None, flags[:1]))
            continue
        lg = np.asarray(logits[query], dtype=np.float64)
        cosines = np.array([c.score for c in cands[: len(lg)]])
        heads.append((lg, cosines, flags[: len(lg)]))
        key = (query, tuple(sorted(gold)))
        if key not in done:
            done.add(key)
            feats.append(candidate_features(lg, cosines))
            labels += flags[: len(lg)].tolist()
    return {"heads": heads, "is_nil": np.asarray(is_nil, dtype=bool),
            "features": np.concatenate(feats) if feats else np.zeros((0, 3)), "labels": np.asarray(labels),
            "removed_concepts": len(removed), "dictionary_concepts": len(reduced)}


def outcomes(sim: dict, calibrator: NilCalibrator) -> tuple[np.ndarray, np.ndarray]:
    """Per simulated pair: best calibrated probability (1.0 for a mention linked as retrieved) and whether the
    concept it would link is right."""
    best, right = [], []
    for logits, cosines, flags in sim["heads"]:
        if logits is None:
            best.append(1.0)
            right.append(bool(flags[0]) if len(flags) else False)
        else:
            r = rerank(logits, cosines, calibrator)
            best.append(r.best_probability)
            right.append(bool(flags[r.order[0]]))
    return np.asarray(best), np.asarray(right, dtype=bool)


def nil_report(sim: dict, calibrator: NilCalibrator) -> dict:
    """NIL precision/recall at the calibrator's threshold, strict and as abstention.

    ``precision``/``recall``: against the truly-NIL mentions (gold concept absent). ``abstention_precision``/
    ``abstention_recall``: against the mentions linking would get wrong (truly NIL, or the linked concept is not
    gold): an abstention there keeps a wrong concept out of NOTE_NLP.
    """
    best, right = outcomes(sim, calibrator)
    nil = sim["is_nil"]
    precision, recall, abstained = nil_precision_recall(best, nil, calibrator.threshold)
    a_precision, a_recall, _ = nil_precision_recall(best, nil | ~right, calibrator.threshold)
    return {"precision": precision, "recall": recall, "threshold": calibrator.threshold, "abstained": abstained,
            "nil_mentions": int(nil.sum()), "abstention_precision": a_precision, "abstention_recall": a_recall,
            "wrong_mentions": int((nil | ~right).sum()), "n": int(len(nil))}


def fit_on_simulation(corpora: Sequence[tuple[str | Path, Sequence[str | Path]]], encoder, reranker: MentionReranker,
                      target_precision: float, holdout: float = DEFAULT_HOLDOUT, seed: int = DEFAULT_SEED,
                      fold: str | None = "A", expand_abbreviations: bool = True, target: str = "abstention",
                      exact: bool = False) -> NilCalibrator:
    """Fit the NIL calibrator on the unseen-concept simulation of each (pairs, dictionaries) corpus, pooled.

    ``reranker``: the shipped ``MentionReranker`` (its ``rerank_k`` and skip rule) over the cross-encoder to
    calibrate. Only doc ``fold`` is used (default "A"; fold "B" stays held out). The threshold is the one with the
    most recall on the pooled simulated mentions whose precision reaches ``target_precision`` on every corpus, where a
    right abstention is
    (``target``) "abstention": a mention linking would get wrong (truly NIL or wrong concept), or "nil": a
    truly-NIL mention only.
    """
    if target not in ("abstention", "nil"):
        raise ValueError(f"threshold target must be 'abstention' or 'nil', got {target!r}")
    sims, report = [], {}
    for pairs_path, dictionary in corpora:
        pairs = prepare_pairs(pairs_path, expand_abbreviations, fold)
        linker = dictionary_linker(load_dictionary(list(dictionary)), encoder, exact=exact,
                                   source=", ".join(Path(x).name for x in dictionary),
                                   domains=dictionary_domains(list(dictionary)))
        reranker.domain_of = linker.domain_of  # this corpus's dictionary: its candidates' domains
        sim = simulate_unseen(linker, pairs, reranker, holdout, seed)
        sims.append(sim)
        report[Path(pairs_path).parent.name + "/" + Path(pairs_path).name] = {
            "pairs": len(pairs), "nil_mentions": int(sim["is_nil"].sum()), "candidates": int(len(sim["labels"])),
            "dictionary": [Path(x).name for x in dictionary]}
    calibrator = fit_calibrator(np.concatenate([s["features"] for s in sims]),
                                np.concatenate([s["labels"] for s in sims]), meta={
        "fitted_on": report, "doc_fold": fold or "all", "holdout": holdout, "seed": seed,
        "rerank_k": reranker.rerank_k, "skip_exact": reranker.skip_exact,
        "expand_abbreviations": expand_abbreviations, "reranker": reranker.model_id})
    best, positive, corpus = [], [], []
    for i, sim in enumerate(sims):
        b, right = outcomes(sim, calibrator)
        best.append(b)
        positive.append(sim["is_nil"] | ~right if target == "abstention" else sim["is_nil"])
        corpus.append(np.full(len(b), i))
    chosen = choose_threshold(np.concatenate(best), np.concatenate(positive), target_precision,
                              groups=np.concatenate(corpus))
    calibrator.threshold = chosen["threshold"]
    calibrator.meta["threshold_choice"] = {**chosen, "target": target}
    for name, sim in zip(report, sims):
        report[name]["at_threshold"] = nil_report(sim, calibrator)
    return calibrator
