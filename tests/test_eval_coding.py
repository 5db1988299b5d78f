"""Document coding scores (CodiEsp-D) and ``clin-linker eval coding``.

The scores are checked on hand-made examples worked out by hand; the command runs the real shipped pipeline
(default index) and coder on hand-written sentences. The coders themselves: tests/test_coder.py.
"""
from __future__ import annotations

import json

import pytest

from clin_linker.pipeline.evaluation.cli import main
from clin_linker.pipeline.evaluation.coding import read_coded_documents
from clin_linker.pipeline.evaluation.metrics import average_precision, score_coding

VALID = {"R31.9", "R31.0", "N28.89", "N28.0", "K59.00", "I10", "E11.9"}


def test_score_coding_on_a_hand_worked_example():
    docs = [
        # gold R31.9, N28.89, N28.0. Ranked: the repeated "r31.9" (same code once normalised) counts at its first
        # rank only and Q99.99X (not in VALID) is dropped first -> [R31.9, R31.0, N28.89].
        # AP = (1/1 + 2/3) / 3 gold = 5/9. cat3: gold {R31, N28}; [R31, R31, N28] -> [R31, N28]: AP = (1 + 2/2) / 2 = 1.
        (["R31.9", "N28.89", "N28.0"], ["R31.9", "R31.0", "N28.89", "r31.9", "Q99.99X"]),
        # gold I10; ranked [K59.00, I10]: AP = (1/2) / 1 = 1/2; cat3 [K59, I10]: AP = 1/2.
        (["I10"], ["K59.00", "I10"]),
        # no gold codes: no AP (left out of MAP), but E11.9 is a false positive (cat3: E11 too).
        ([], ["E11.9"]),
    ]
    r = score_coding(docs, VALID)
    assert r["n_docs"] == 3
    # MAP over the 2 documents with gold codes: (5/9 + 1/2) / 2 = 19/36
    assert r["map"] == pytest.approx(19 / 36)
    # tp = 2 (R31.9, N28.89) + 1 (I10) = 3; fp = R31.0 + K59.00 + E11.9 = 3; fn = N28.0 = 1
    # P = 3/6 = 0.5, R = 3/4 = 0.75, F1 = 2 * 0.5 * 0.75 / 1.25 = 0.6
    assert r["micro"] == pytest.approx({"precision": 0.5, "recall": 0.75, "f1": 0.6})
    # cat3: MAP (1 + 1/2) / 2 = 0.75; tp = 2 (R31, N28) + 1 (I10) = 3; fp = K59 + E11 = 2; fn = 0
    # P = 3/5 = 0.6, R = 1.0, F1 = 2 * 0.6 / 1.6 = 0.75
    assert r["cat3"] == pytest.approx({"map": 0.75, "precision": 0.6, "recall": 1.0, "f1": 0.75})


def test_a_category_gold_code_matches_itself_or_one_code_under_it_and_gold_spelling_is_normalised():
    # without the vocabulary's billable codes: exact matching only
    assert score_coding([([" r31 "], ["R31.9"])])["map"] == 0.0
    assert average_precision(["R31.9", "R31"], {"R31"}) == 0.5
    # gold R51 is not billable (FY2026 split it): the best-ranked R51.x matches it, once; R51.0 later is a miss.
    # ranked [I10, R51.9, R51.0]: gold {R51, I10} -> hits at 1 and 2: AP = (1 + 1) / 2 = 1; P = 2/3
    billable = {"R51.0", "R51.9", "I10"}
    r = score_coding([(["R51", "I10"], ["I10", "R51.9", "R51.0"])], billable=billable)
    assert r["map"] == pytest.approx(1.0) and r["micro"]["precision"] == pytest.approx(2 / 3)
    # a billable gold code is never matched by another code: gold R51.9, predicted R51.0
    assert score_coding([(["R51.9"], ["R51.0"])], billable=billable)["map"] == 0.0


def _run(capsys, *argv: str) -> dict:
    assert main(["eval", "coding", *argv, "--threads", "1", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_coding_end_to_end(nlp, tmp_path, capsys):
    data = tmp_path / "coded.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in [
        {"doc_id": "1", "text": "The patient has essential hypertension.", "icd10cm": ["i10"]},
        {"doc_id": "2", "text": "No hematuria.", "icd10cm": ["R31.9"]},
        {"doc_id": "3", "text": "She was seen in clinic today.", "icd10cm": []},
    ]))
    # zero-shot: doc 1 ranks I10 first (AP 1, gold spelled "i10"), doc 2 codes nothing (AP 0), doc 3 has no gold
    r = _run(capsys, "--data", str(data), "--zero-shot")
    assert r["n_docs"] == 3 and r["docs_per_s"] > 0
    assert r["map"] == pytest.approx(0.5) and r["micro"]["recall"] == pytest.approx(0.5)
    assert r["micro"]["precision"] == pytest.approx(1.0)
    assert "clin_linker" in r["artifacts"] and r["artifacts"]["coder"] == "zero-shot"
    # with negated mentions, hematuria makes an R31 code: category level finds both gold codes
    r = _run(capsys, "--data", str(data), "--zero-shot", "--include-negated")
    assert r["cat3"]["recall"] == pytest.approx(1.0) and r["cat3"]["map"] == pytest.approx(1.0)
    # the shipped coder model: I10 of doc 1 ranks first too
    r = _run(capsys, "--data", str(data), "--limit", "1")
    assert r["n_docs"] == 1 and r["map"] == pytest.approx(1.0) and r["artifacts"]["coder"].startswith("clin-coder")


def test_a_line_without_gold_codes_is_named(tmp_path):
    data = tmp_path / "coded.jsonl"
    data.write_text(json.dumps({"doc_id": "1", "text": "x", "icd10cm": []}) + "\n"
                    + json.dumps({"doc_id": "2", "text": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"line 2: field\(s\) icd10cm missing"):
        read_coded_documents(data, "ICD10CM")
