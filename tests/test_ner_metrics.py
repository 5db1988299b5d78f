"""Strict span P/R/F1 on hand-made examples whose scores were worked out by hand."""
from __future__ import annotations

import json

import pytest

from clin_linker.models.ner.labels import LABELS
from clin_linker.pipeline.evaluation.metrics import evaluate_file, format_table, span_scores

GOLD = [
    [(0, 5, "CONDITION"), (10, 15, "DRUG"), (20, 25, "CONDITION")],
    [(0, 3, "CONDITION"), (5, 9, "PROCEDURE")],
]
PRED = [
    [(0, 5, "CONDITION"), (10, 15, "CONDITION"), (20, 24, "CONDITION")],  # 1 hit, wrong label, wrong end
    [(0, 3, "CONDITION"), (5, 9, "PROCEDURE"), (12, 14, "DRUG")],  # 2 hits, 1 spurious
]


def test_span_scores_by_hand():
    r = span_scores(GOLD, PRED, ["CONDITION", "DRUG", "PROCEDURE"])
    # CONDITION: tp 2, predicted 4, gold 3 -> P 1/2, R 2/3, F1 4/7
    c = r["labels"]["CONDITION"]
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert (c["support"], c["predicted"]) == (3, 4)
    # DRUG: tp 0, predicted 1, gold 1 -> all 0
    assert r["labels"]["DRUG"]["f1"] == 0.0
    # PROCEDURE: perfect
    assert r["labels"]["PROCEDURE"]["f1"] == 1.0
    # micro: tp 3, predicted 6, gold 5 -> P 0.5, R 0.6, F1 6/11
    assert (r["micro"]["precision"], r["micro"]["recall"], r["micro"]["f1"]) == pytest.approx((0.5, 0.6, 6 / 11))


def test_duplicates_count_once_and_other_labels_are_ignored():
    r = span_scores([[(0, 5, "DRUG"), (0, 5, "DRUG")]], [[(0, 5, "DRUG"), (7, 9, "DEVICE")]], ["DRUG"])
    assert r["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert set(r["labels"]) == {"DRUG"}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        span_scores(GOLD, PRED[:1])


class FixedTagger:
    """Returns preset spans, so evaluate_file is tested without a model."""

    def __init__(self, spans):
        self.spans = spans

    def predict(self, texts, batch_size=16):
        assert len(texts) == len(self.spans)
        return self.spans


def test_evaluate_file_reads_the_shared_format(tmp_path):
    path = tmp_path / "tiny.jsonl"
    docs = [
        {"doc_id": "1", "text": "Fever and aspirin.", "entities": [
            {"start": 0, "end": 5, "label": "CONDITION", "text": "Fever"},
            {"start": 10, "end": 17, "label": "DRUG", "text": "aspirin"},
            {"start": 0, "end": 5, "label": "VALUE", "text": "Fever"},  # not one of our labels
        ]},
        {"doc_id": "2", "text": "No findings.", "entities": []},
    ]
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    tagger = FixedTagger([[(0, 5, "CONDITION"), (10, 17, "CONDITION")], [(3, 11, "DEVICE")]])

    r = evaluate_file(path, tagger)  # scores the labels the file annotates: CONDITION, DRUG
    assert r["n_docs"] == 2 and r["scored_labels"] == ["CONDITION", "DRUG"]
    # tp 1 (Fever), predicted 2 (DEVICE not scored), gold 2 -> P R F1 = 0.5
    assert r["micro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})

    r_all = evaluate_file(path, tagger, labels=LABELS)  # the DEVICE prediction now counts
    assert r_all["micro"]["precision"] == pytest.approx(1 / 3)
    assert r_all["labels"]["DEVICE"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1}

    table = format_table({"tiny": r})
    assert "| tiny | 2 | 0.500 | 0.500 | **0.500** |" in table
