"""Strict span precision / recall / F1, per label and micro-averaged (torch-free).

Strict: a predicted span counts only if start, end AND label equal a gold span's.

Gold spans are all annotations of the file whose label is one of ``LABELS``, nested ones
included. The tagger is flat (BIO), so of two nested gold spans it can find at most one: on
Chia and MACCROBAT this caps recall a little below 1 (see ``data/README`` §4 for the counts).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from .labels import LABELS, Span


class Tagger(Protocol):
    """Anything that turns texts into spans (``OnnxNerTagger``, the torch tagger of training)."""

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> list[list[Span]]: ...


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_scores(
    gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]], labels: Sequence[str] = LABELS
) -> dict:
    """Scores over documents (``gold[i]`` and ``pred[i]`` belong to document i).

    Spans whose label is not in ``labels`` are ignored on both sides. Returns
    ``{"micro": {precision, recall, f1}, "labels": {label: {precision, recall, f1, support,
    predicted}}}`` with one entry per label in ``labels``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predicted")
    counts = {lab: [0, 0, 0] for lab in labels}  # tp, predicted, gold
    for gold_doc, pred_doc in zip(gold, pred):
        gold_set = {s for s in gold_doc if s[2] in counts}
        pred_set = {s for s in pred_doc if s[2] in counts}
        for s in gold_set:
            counts[s[2]][2] += 1
        for s in pred_set:
            counts[s[2]][1] += 1
            counts[s[2]][0] += s in gold_set
    per_label = {lab: {**_prf(*c), "support": c[2], "predicted": c[1]} for lab, c in counts.items()}
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {"micro": _prf(*totals), "labels": per_label}


def read_documents(jsonl_path: Path, limit: int | None = None) -> list[dict]:
    """Documents of a JSONL file in the shared NER format (``text``, ``entities``)."""
    docs = []
    with open(jsonl_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                docs.append(json.loads(line))
                if limit is not None and len(docs) >= limit:
                    break
    return docs


def gold_spans(doc: dict) -> list[Span]:
    """A document's annotations with one of our labels, as ``(start, end, label)``."""
    return [(e["start"], e["end"], e["label"]) for e in doc.get("entities", []) if e["label"] in LABELS]


def evaluate_file(
    jsonl_path: Path,
    tagger: Tagger,
    labels: Sequence[str] | None = None,
    batch_size: int = 16,
    limit: int | None = None,
) -> dict:
    """Tag a JSONL file's texts and score them against its annotations.

    ``labels=None`` scores the labels that the file annotates at least once (in ``LABELS``
    order). A corpus that never annotates a type cannot judge predictions of it: NCBI-disease
    only marks diseases, so a drug the tagger finds there is not an error. Pass ``LABELS`` to
    score all six. The labels used are returned as ``scored_labels``. ``limit`` reads only the
    first documents (quick checks during training).
    """
    docs = read_documents(Path(jsonl_path), limit)
    gold = [gold_spans(d) for d in docs]
    if labels is None:
        present = {s[2] for doc in gold for s in doc}
        labels = [lab for lab in LABELS if lab in present]
    pred = tagger.predict([d["text"] for d in docs], batch_size=batch_size)
    report = span_scores(gold, pred, labels)
    return {**report, "n_docs": len(docs), "scored_labels": list(labels)}


def format_table(reports: dict[str, dict]) -> str:
    """Markdown table: one row per report name (e.g. corpus), micro and per-label F1."""
    cols = [lab for lab in LABELS if any(lab in r["labels"] for r in reports.values())]
    lines = [
        "| dev file | docs | micro P | micro R | micro F1 | " + " | ".join(cols) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(cols),
    ]
    for name, r in reports.items():
        m = r["micro"]
        cells = [
            f"{r['labels'][c]['f1']:.3f} ({r['labels'][c]['support']})" if c in r["labels"] else "–" for c in cols
        ]
        lines.append(
            f"| {name} | {r['n_docs']} | {m['precision']:.3f} | {m['recall']:.3f} | **{m['f1']:.3f}** | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)
