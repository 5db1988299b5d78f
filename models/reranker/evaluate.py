"""Linking evaluation with the cross-encoder: acc@k before/after reranking, and NIL in an unseen-concept simulation.

Same protocol as ``models/biencoder/evaluate`` (exact cosine retrieval over the dictionary, a concept scores its
best name, composite gold ids, alt ids), then the top ``rerank_k`` concepts of each mention are reranked: each is
shown to the cross-encoder as the name the retrieval matched (``DictionaryIndex.best_names``, what training saw),
and ordered by calibrated probability (``scoring.rerank``). Ranks below ``rerank_k`` keep the retrieval order, so
acc@25 moves only through the top ``rerank_k``. A mention whose top concept's matched name is spelled like it is
*decisive* and kept as retrieved (``skip_exact``); the cost of that shortcut is measured (``rerank.shortcut``).

Unseen-concept simulation: a seeded ``holdout`` share of the distinct gold concepts of the pairs is removed from
the dictionary (with all its names), retrieval + reranking run again, and a mention abstains (NIL) when its best
calibrated probability is below the threshold. A mention is truly NIL when none of its gold ids is left in the
dictionary (held out, or never there: a pair beyond the ceiling is NIL too). NIL precision = truly-NIL share of
the abstained mentions; recall = abstained share of the truly-NIL mentions. Also reported as *abstention*
precision/recall, where an abstention is right on any mention linking would get wrong (truly NIL, or the
linked concept is not gold): what keeps wrong concepts out of NOTE_NLP.

Documents can be split in two folds by a hash of ``doc_id`` (``doc_fold``): calibration is fitted on fold A, so
fold B is the held-out view of anything that depends on it.
"""
from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..biencoder.evaluate import (
    Dictionary, DictionaryIndex, _encode, add_mentions, load_dictionary, read_pairs, score_orders,
)
from .calibration import NilCalibrator, candidate_features, fit_calibrator, nil_precision_recall
from .scoring import Reranked, is_decisive, rerank

#: Default share of gold concepts removed from the dictionary in the unseen-concept simulation.
DEFAULT_HOLDOUT = 0.2
DEFAULT_SEED = 13


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


@dataclass
class MentionRun:
    """One mention's retrieval (top concepts + cosines) and, when reranked, its reranking."""

    top: np.ndarray
    cosines: np.ndarray
    decisive: bool
    reranked: Reranked | None = None
    raw_logits: np.ndarray | None = None  # cross-encoder logits of the head, in retrieval order

    def order(self, use_shortcut: bool = True) -> np.ndarray:
        """Concept positions best first: the reranked head, then the rest of the retrieval order."""
        if self.reranked is None or (use_shortcut and self.decisive):
            return self.top
        head = self.top[self.reranked.order]
        return np.r_[head, self.top[len(self.reranked.order):]]

    def best_probability(self, use_shortcut: bool = True) -> float:
        """Calibrated probability of the top candidate; 1.0 for a decisive mention (linked without reranking)."""
        if self.reranked is None or (use_shortcut and self.decisive):
            return 1.0
        return self.reranked.best_probability


def run_mentions(index: DictionaryIndex, encoder, reranker, calibrator: NilCalibrator, mentions: Sequence[str],
                 k: int, rerank_k: int, rerank_decisive: bool = True, batch_size: int = 256,
                 groups_per_call: int = 1) -> tuple[dict[str, MentionRun], dict]:
    """Retrieve the top ``max(k, rerank_k)`` concepts of each mention and rerank the top ``rerank_k``.

    ``rerank_decisive``: also rerank decisive mentions, so the shortcut's cost can be measured.
    Returns the runs by mention and timings.
    """
    t0 = time.perf_counter()
    qv = _encode(encoder, list(mentions), batch_size)
    top, sims = index.search(qv, max(k, rerank_k))
    t_retrieve = time.perf_counter() - t0
    runs: dict[str, MentionRun] = {}
    groups, owners, heads = [], [], []
    for m, vec, row, row_s in zip(mentions, qv, top, sims):
        head = row[:rerank_k]
        names = index.best_names(vec, head)
        run = MentionRun(row, row_s, is_decisive(m, names[0]) if len(names) else False)
        runs[m] = run
        if len(head) and (rerank_decisive or not run.decisive):
            groups.append([(m, n) for n in names])
            owners.append(m)
            heads.append(row_s[:rerank_k])
    t1 = time.perf_counter()
    logits = reranker.score_groups(groups, groups_per_call=groups_per_call) if groups else []
    for m, lg, cos in zip(owners, logits, heads):
        runs[m].reranked = rerank(lg, cos, calibrator)
        runs[m].raw_logits = lg
    t_rerank = time.perf_counter() - t1
    timing = {"retrieval_s": round(t_retrieve, 2), "rerank_s": round(t_rerank, 2), "mentions": len(mentions),
              "reranked_mentions": len(groups), "pairs_scored": sum(len(g) for g in groups)}
    return runs, timing


def _ranks(pairs: Sequence[dict], d: Dictionary, runs: dict[str, MentionRun], k: int, reranked: bool,
           use_shortcut: bool = True) -> dict:
    """acc@k/MRR (+ per label, ceiling) of the runs' orders: the biencoder protocol's result keys."""
    def order(p: dict) -> Sequence[int]:
        run = runs[p["mention"]]
        return run.order(use_shortcut) if reranked else run.top

    return score_orders(pairs, d, order, k)


def simulate_unseen(d: Dictionary, pairs: Sequence[dict], encoder, reranker, rerank_k: int,
                    holdout: float = DEFAULT_HOLDOUT, seed: int = DEFAULT_SEED, cache: dict | None = None,
                    groups_per_call: int = 1, skip_exact: bool = True) -> dict:
    """Remove a held-out share of gold concepts and rerun retrieval + cross-encoder: the NIL evidence per pair.

    Returns per pair ``is_nil`` and ``heads``: (logits, cosines, gold flags) of its top ``rerank_k`` in retrieval
    order, or (None, None, gold flag of the top concept) for a decisive mention kept as retrieved; the
    per-candidate ``features``/``labels`` of every distinct reranked (mention, gold) (what :func:`fit_calibrator`
    learns from); and counts. Nothing here depends on a calibrator: :func:`outcomes` applies one.
    """
    removed = holdout_concepts(d, pairs, holdout, seed)
    reduced = without_concepts(d, removed)
    index = DictionaryIndex(reduced, encoder, cache=cache if cache is not None else {})
    mentions = sorted({p["mention"] for p in pairs})
    runs, _ = run_mentions(index, encoder, reranker, NilCalibrator.uncalibrated(), mentions, k=rerank_k,
                           rerank_k=rerank_k, rerank_decisive=not skip_exact, groups_per_call=groups_per_call)
    by_id = reduced.concepts_for_id()
    heads, is_nil, feats, labels = [], [], [], []
    done: set[tuple[str, tuple[str, ...]]] = set()
    for p in pairs:
        gold = set(p["concept_ids"])
        run = runs[p["mention"]]
        is_nil.append(not any(i in by_id for i in gold))
        if run.reranked is None or (skip_exact and run.decisive):
            heads.append((None, None, np.array([bool(reduced.ids[run.top[0]] & gold)]) if len(run.top) else
                          np.zeros(0, dtype=bool)))
            continue
        n = len(run.raw_logits)
        flags = np.array([bool(reduced.ids[c] & gold) for c in run.top[:n]])
        heads.append((run.raw_logits, run.cosines[:n], flags))
        key = (p["mention"], tuple(sorted(gold)))
        if key not in done:
            done.add(key)
            feats.append(candidate_features(run.raw_logits, run.cosines[:n]))
            labels += flags.tolist()
    return {"heads": heads, "is_nil": np.asarray(is_nil, dtype=bool),
            "features": np.concatenate(feats) if feats else np.zeros((0, 3)), "labels": np.asarray(labels),
            "removed_concepts": len(removed), "dictionary_concepts": len(reduced)}


def outcomes(sim: dict, calibrator: NilCalibrator) -> tuple[np.ndarray, np.ndarray]:
    """Per simulated pair: best calibrated probability (1.0 for a decisive mention, linked as retrieved) and
    whether the concept it would link is right."""
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


def evaluate_reranking(pairs_path, dictionary, encoder, reranker, calibrator: NilCalibrator | None = None,
                       k: int = 25, rerank_k: int = 5, skip_exact: bool = True, add_train_mentions=None,
                       expand_abbreviations: bool = False, holdout: float = DEFAULT_HOLDOUT,
                       seed: int = DEFAULT_SEED, threshold: float | None = None, fold: str | None = None,
                       cache: dict | None = None, groups_per_call: int = 1, nil: bool = True) -> dict:
    """acc@k/MRR after reranking (top-level keys, as ``evaluate_linking``), ``retrieval_only``, ``rerank``, ``nil``.

    ``reranker``: an ``OnnxCrossEncoder``; ``calibrator``: its fitted NilCalibrator (default: the model
    directory's ``calibration.json``, else uncalibrated). ``threshold`` overrides the calibrated NIL threshold.
    ``fold``: score only the pairs of documents in doc fold "A" or "B" (see ``doc_fold``).
    """
    if calibrator is None:
        path = Path(reranker.info.directory) / "calibration.json"
        calibrator = NilCalibrator.load(path) if path.exists() else NilCalibrator.uncalibrated()
    if threshold is not None:
        calibrator = NilCalibrator(calibrator.weights, calibrator.bias, threshold, calibrator.features, calibrator.meta)
    cache = cache if cache is not None else {}
    d = load_dictionary(dictionary)
    if add_train_mentions:
        d = add_mentions(d, add_train_mentions)
    if isinstance(pairs_path, (str, Path)):
        pairs = _pairs(pairs_path, expand_abbreviations)
    else:
        pairs = list(pairs_path)
        if expand_abbreviations:
            from ..biencoder.doc_abbreviations import DocAbbreviationExpander

            pairs = DocAbbreviationExpander().expand(pairs)
    pairs = select_fold(pairs, fold)
    if not pairs:
        raise ValueError(f"no pairs to score in {pairs_path}" + (f" (doc fold {fold})" if fold else ""))
    if not 1 <= rerank_k <= k:
        raise ValueError(f"rerank k must be between 1 and k={k}, got {rerank_k}")
    index = DictionaryIndex(d, encoder, cache=cache)
    mentions = sorted({p["mention"] for p in pairs})
    runs, timing = run_mentions(index, encoder, reranker, calibrator, mentions, k, rerank_k,
                                rerank_decisive=True, groups_per_call=groups_per_call)
    result = _ranks(pairs, d, runs, k, reranked=True, use_shortcut=skip_exact)
    result["retrieval_only"] = _ranks(pairs, d, runs, k, reranked=False)
    without = _ranks(pairs, d, runs, k, reranked=True, use_shortcut=False)
    decisive = sum(run.decisive for run in runs.values())
    result["rerank"] = {
        "model": reranker.model_id, "rerank_k": rerank_k, "skip_exact": skip_exact,
        "calibrated": bool(calibrator.meta.get("fitted", True)),
        "decisive_mentions": decisive, "mentions": len(mentions),
        "shortcut": {"acc@1_skip_exact": _ranks(pairs, d, runs, k, True, True)["acc@1"],
                     "acc@1_rerank_all": without["acc@1"]},
        "timing": timing,
    }
    if nil:
        sim = simulate_unseen(d, pairs, encoder, reranker, rerank_k, holdout, seed, cache, groups_per_call,
                              skip_exact)
        result["nil"] = {**nil_report(sim, calibrator), "holdout": holdout, "seed": seed,
                         "removed_concepts": sim["removed_concepts"]}
    return result


def fit_on_simulation(corpora: Sequence[tuple[str | Path, Sequence[str | Path]]], encoder, reranker,
                      rerank_k: int, target_precision: float, holdout: float = DEFAULT_HOLDOUT,
                      seed: int = DEFAULT_SEED, fold: str | None = "A", expand_abbreviations: bool = True,
                      groups_per_call: int = 1, skip_exact: bool = True, target: str = "abstention"
                      ) -> NilCalibrator:
    """Fit the NIL calibrator on the unseen-concept simulation of each (pairs, dictionaries) corpus, pooled.

    Only doc ``fold`` is used (default "A"; fold "B" stays held out). The threshold is the one reaching
    ``target_precision`` with the most recall on the pooled simulated mentions, where a right abstention is
    (``target``) "abstention": a mention linking would get wrong (truly NIL or wrong concept), or "nil": a
    truly-NIL mention only.
    """
    if target not in ("abstention", "nil"):
        raise ValueError(f"threshold target must be 'abstention' or 'nil', got {target!r}")
    from .calibration import choose_threshold

    cache: dict = {}
    sims, report = [], {}
    for pairs_path, dictionary in corpora:
        pairs = select_fold(_pairs(pairs_path, expand_abbreviations), fold)
        sim = simulate_unseen(load_dictionary(list(dictionary)), pairs, encoder, reranker, rerank_k, holdout, seed,
                              cache, groups_per_call, skip_exact)
        sims.append(sim)
        report[Path(pairs_path).parent.name + "/" + Path(pairs_path).name] = {
            "pairs": len(pairs), "nil_mentions": int(sim["is_nil"].sum()), "candidates": int(len(sim["labels"])),
            "dictionary": [Path(x).name for x in dictionary]}
    calibrator = fit_calibrator(np.concatenate([s["features"] for s in sims]),
                                np.concatenate([s["labels"] for s in sims]), meta={
        "fitted_on": report, "doc_fold": fold or "all", "holdout": holdout, "seed": seed, "rerank_k": rerank_k,
        "skip_exact": skip_exact, "expand_abbreviations": expand_abbreviations, "reranker": reranker.model_id})
    best, positive = [], []
    for sim in sims:
        b, right = outcomes(sim, calibrator)
        best.append(b)
        positive.append(sim["is_nil"] | ~right if target == "abstention" else sim["is_nil"])
    chosen = choose_threshold(np.concatenate(best), np.concatenate(positive), target_precision)
    calibrator.threshold = chosen["threshold"]
    calibrator.meta["threshold_choice"] = {**chosen, "target": target}
    for name, sim in zip(report, sims):
        report[name]["at_threshold"] = nil_report(sim, calibrator)
    return calibrator


def _pairs(path: str | Path, expand: bool) -> list[dict]:
    pairs = read_pairs(path)
    if expand:
        from ..biencoder.doc_abbreviations import DocAbbreviationExpander

        pairs = DocAbbreviationExpander().expand(pairs)
    return pairs


def add_rerank_arguments(ap) -> None:
    """``--rerank`` and friends on ``clin-linker eval linking`` (``models/biencoder/evaluate.main``)."""
    g = ap.add_argument_group("reranking (cross-encoder) and NIL")
    g.add_argument("--rerank", metavar="RERANKER_DIR",
                   help="rerank with this cross-encoder artifact; reports acc@k before and after, and NIL in the "
                        "unseen-concept simulation")
    g.add_argument("--rerank-k", type=int, default=5, help="candidates reranked per mention (default 5)")
    g.add_argument("--rerank-all", action="store_true",
                   help="also rerank decisive mentions (a dictionary name spelled like the mention)")
    g.add_argument("--nil-threshold", type=float, default=None,
                   help="NIL below this calibrated probability (default: the reranker's calibration.json)")
    g.add_argument("--nil-holdout", type=float, default=DEFAULT_HOLDOUT,
                   help=f"share of gold concepts removed in the NIL simulation (default {DEFAULT_HOLDOUT})")
    g.add_argument("--nil-seed", type=int, default=DEFAULT_SEED)
    g.add_argument("--doc-fold", choices=("A", "B", "all"), default="all",
                   help="score only documents of this fold (calibration is fitted on A; B is held out)")


def run_rerank_cli(a, encoder) -> int:
    """``eval linking --rerank``: print the before/after table and the NIL line, or one JSON object."""
    import json

    from .runtime import OnnxCrossEncoder

    reranker = OnnxCrossEncoder(Path(a.rerank), threads=a.threads)
    r = evaluate_reranking(a.pairs, a.dictionary, encoder, reranker, k=a.k, rerank_k=a.rerank_k,
                           skip_exact=not a.rerank_all, add_train_mentions=a.add_train_mentions,
                           expand_abbreviations=a.expand_abbreviations, holdout=a.nil_holdout, seed=a.nil_seed,
                           threshold=a.nil_threshold, fold=a.doc_fold)
    if a.json:
        print(json.dumps(r))
        return 0
    from ..biencoder.evaluate import format_row

    rr = r["rerank"]
    print("composite gold ids: a hit on any id counts; concept alt_ids count as the concept"
          + ("; train mentions ADDED to the dictionary" if a.add_train_mentions else "")
          + ("; short forms expanded from same-document mentions" if a.expand_abbreviations else "")
          + (f"; doc fold {a.doc_fold}" if a.doc_fold != "all" else ""))
    print(f"reranker {rr['model']}, top {rr['rerank_k']} reranked"
          + (f", {rr['decisive_mentions']}/{rr['mentions']} decisive mentions kept as retrieved" if rr["skip_exact"]
             else "") + ("" if rr["calibrated"] else "; UNCALIBRATED (no calibration.json)"))
    print(f"{'':<34} acc@1 acc@5 acc@25 mrr    n      ceiling")
    for name, res in (("retrieval only", r["retrieval_only"]), ("retrieval + rerank", r)):
        print(format_row(f"{name}: all", res))
        for label, s in res["labels"].items():
            print(format_row(f"{name}: {label}", s))
    n = r.get("nil")
    if n:
        print(f"NIL (unseen-concept simulation: {n['holdout']:.0%} of gold concepts removed, seed {n['seed']}): "
              f"threshold {n['threshold']:.3f}, precision {n['precision']:.3f}, recall {n['recall']:.3f} "
              f"({n['abstained']} abstained, {n['nil_mentions']} of {n['n']} mentions truly NIL); as abstention "
              f"(truly NIL or wrongly linked, {n['wrong_mentions']} mentions): precision "
              f"{n['abstention_precision']:.3f}, recall {n['abstention_recall']:.3f}")
    return 0
