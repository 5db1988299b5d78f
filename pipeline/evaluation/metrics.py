"""The scores of every evaluation: linking ranks, strict mention spans, assertion flags.

- Linking (:func:`score_orders`): acc@1/5/25, MRR over the top ``k`` (a gold concept below rank k contributes 0) and
  ceiling (share of pairs with at least one gold id in the dictionary), overall and per label; a pair's gold ids may
  be composite (a hit on ANY gold id counts) and a concept counts for all its ids (its alt ids).
- Mentions (``span_scores``, ``evaluate_file``, ``format_table``): strict span precision/recall/F1, per label and
  micro-averaged. They are defined in ``models.ner.metrics`` because NER training selects its checkpoint by them and
  its export writes them into the model card (models may not import pipeline); ``eval ner`` takes them from here.
- Assertions (:func:`score_context`): accuracy/precision/recall/F1 per ConText flag on annotated spans.
- Document coding (:func:`score_coding`): CodiEsp-D MAP and micro precision/recall/F1 of each note's ranked code
  list, at code and at 3-character category level.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Optional

from spacy.language import Language

from ...models.biencoder.dictionary import Dictionary
from ...models.ner.metrics import Tagger, evaluate_file, format_table, span_scores  # noqa: F401  (re-exported)
from ..context_component import EVAL_FLAGS, assert_span, context_pipeline

KS = (1, 5, 25)


def _rank_scores(ranks: list[int | None], k: int) -> dict:
    n = len(ranks)
    out = {f"acc@{kk}": (sum(1 for r in ranks if r is not None and r <= kk) / n if n else 0.0) for kk in KS if kk <= k}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n if n else 0.0
    out["n"] = n
    return out


def score_orders(pairs: Sequence[dict], d: Dictionary, order_of: Callable[[dict], Sequence[int]], k: int) -> dict:
    """acc@k, MRR and ceiling, overall and per label, of the concept order ``order_of(pair)`` of every pair.

    ``order_of`` gives concept positions in ``d``, best first. Retrieval and reranking differ only in that order.
    Returns ``{"acc@1","acc@5","acc@25","mrr","n","ceiling","labels": {LABEL: {...}}}``.
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
    result = _rank_scores(ranks, k)
    result["ceiling"] = sum(per_label_ceiling.values()) / len(pairs) if pairs else 0.0
    result["labels"] = {}
    for label in sorted(per_label):
        s = _rank_scores(per_label[label], k)
        s["ceiling"] = per_label_ceiling[label] / len(per_label[label])
        result["labels"][label] = s
    return result


def format_rank_row(name: str, r: dict) -> str:
    """One table row of :func:`score_orders` scores."""
    return (f"{name:<34} {r['acc@1']:.3f} {r.get('acc@5', float('nan')):.3f} {r.get('acc@25', float('nan')):.3f} "
            f"{r['mrr']:.3f} {r['n']:>6} {r.get('ceiling', float('nan')):.3f}")


def predict_flags(nlp: Language, example: dict) -> dict:
    """The assertion flags ``nlp`` gives the annotated span of ``example`` (``text``, ``start``, ``end``)."""
    span = assert_span(nlp, example["text"], example["start"], example["end"])
    return {flag: bool(getattr(span._, attr)) for flag, attr in EVAL_FLAGS.items()}


def score_context(examples: Iterable[dict], nlp: Optional[Language] = None) -> dict:
    """``{FLAG: {"accuracy", "precision", "recall", "f1", "n"}}`` over examples ``{"text", "start", "end", FLAG...}``.

    A flag absent from an example (or null) is not scored on it; flags no example has are left out.
    ``nlp`` defaults to ``context_pipeline()``; a full pipeline works too (its mention detectors are skipped).
    """
    nlp = nlp or context_pipeline()
    counts = {flag: {"tp": 0, "fp": 0, "fn": 0, "tn": 0} for flag in EVAL_FLAGS}
    for example in examples:
        predicted = predict_flags(nlp, example)
        for flag in EVAL_FLAGS:
            if example.get(flag) is None:
                continue
            gold, pred = bool(example[flag]), predicted[flag]
            counts[flag][("t" if gold == pred else "f") + ("p" if pred else "n")] += 1
    scores = {}
    for flag, c in counts.items():
        n = sum(c.values())
        if not n:
            continue
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[flag] = {"accuracy": (c["tp"] + c["tn"]) / n, "precision": precision, "recall": recall, "f1": f1,
                        "n": n}
    return scores


def normalize_code(code: str) -> str:
    """How gold and predicted codes are compared: stripped and upper-cased, the dot kept where the vocabulary writes
    it ("r31.9 " -> "R31.9", the spelling of the store's ICD10CM keys and of the shared CodiEsp files)."""
    return code.strip().upper()


def _ranked(codes: Iterable[str], valid: Collection[str] | None, cut: int | None = None) -> list[str]:
    """Normalised codes, those outside ``valid`` dropped, cut to ``cut`` characters, de-duplicated at first rank."""
    out: list[str] = []
    for code in map(normalize_code, codes):
        if valid is not None and code not in valid:
            continue
        code = code[:cut] if cut else code
        if code not in out:
            out.append(code)
    return out


def average_precision(ranked: Sequence[str], gold: Collection[str]) -> float:
    """CodiEsp-D average precision: the sum of precision@k at every rank k holding a gold code (over the whole
    list), divided by the number of gold codes; 0.0 for no gold codes (callers leave such documents out)."""
    hits, total = 0, 0.0
    for k, code in enumerate(ranked, start=1):
        if code in gold:
            hits += 1
            total += hits / k
    return total / len(gold) if gold else 0.0


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _as_gold(ranked: Sequence[str], gold: set[str], categories: set[str]) -> list[str]:
    """``ranked`` with each code under a gold category (``categories``: gold codes the vocabulary does not bill)
    written as that category, the first such code only, then de-duplicated at first rank."""
    out: list[str] = []
    matched: set[str] = set()
    for code in ranked:
        if code not in gold:
            parent = next((g for g in sorted(categories) if g not in matched and code.startswith(g)), None)
            if parent is not None:
                matched.add(parent)
                code = parent
        if code not in out:
            out.append(code)
    return out


def _coding_level(docs: Sequence[tuple[Sequence[str], Sequence[str]]], valid: Collection[str] | None,
                  cut: int | None, billable: Collection[str] | None) -> dict:
    aps: list[float] = []
    tp = fp = fn = 0
    for gold_codes, predicted in docs:
        gold = set(_ranked(gold_codes, None, cut))
        ranked = _ranked(predicted, valid, cut)
        if billable is not None and cut is None:
            ranked = _as_gold(ranked, gold, {g for g in gold if g not in billable})
        if gold:
            aps.append(average_precision(ranked, gold))
        hit = len(gold.intersection(ranked))
        tp, fp, fn = tp + hit, fp + len(ranked) - hit, fn + len(gold) - hit
    return {"map": sum(aps) / len(aps) if aps else 0.0, **_prf(tp, fp, fn)}


def score_coding(docs: Sequence[tuple[Sequence[str], Sequence[str]]], valid: Collection[str] | None = None,
                 billable: Collection[str] | None = None) -> dict:
    """``{"map", "micro": {"precision", "recall", "f1"}, "cat3": {"map", "precision", "recall", "f1"}, "n_docs"}``
    of ``docs``: one ``(gold codes, predicted codes best first)`` pair per document.

    Codes are compared after :func:`normalize_code`. Predicted codes outside ``valid`` (normalised codes of the
    vocabulary; None keeps all) are dropped first, and a repeated code counts at its first rank only. A document
    without gold codes has no average precision and is left out of MAP, but its predictions count as false
    positives. ``cat3``: every code cut to its first 3 characters (the ICD-10 category), de-duplicated at its first
    rank, then scored the same way.

    A gold code that is not billable (``billable``: the vocabulary's billable codes; None = exact matching only)
    is matched by itself or by the best-ranked predicted code under it, once. CodiEsp's coders used the FY2018
    edition: R51 "headache" was billable then, and FY2026 splits it into R51.0/R51.9; a gold "W19.XXX" lacks the
    7th character FY2026 requires. A coder today writes R51.9 for that note, and it counts.
    """
    micro = _coding_level(docs, valid, None, billable)
    return {"map": micro.pop("map"), "micro": micro, "cat3": _coding_level(docs, valid, 3, billable),
            "n_docs": len(docs)}
