"""Reranker training code: hard-negative mining with the real base encoder, and a seconds-long training run."""
from __future__ import annotations

import json

import pytest

from clin_linker.models.biencoder.dictionary import DictionaryIndex, load_names_tsv
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.models.reranker.data import (
    RerankExample, load_examples, mine_examples, mine_synonym_examples, save_examples,
)
from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR

NAMES = """concept_id\tname
MESH:D1\tMyocardial Infarction
MESH:D1\tHeart Attack
MESH:D2\tChest Pain
MESH:D3\tHeart Failure
MESH:D4\tAngina Pectoris
MESH:D5\tDiabetes Mellitus
MESH:D5\tSugar Diabetes
MESH:D6\tDiabetes Insipidus
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("rr") / "names.tsv"
    path.write_text(NAMES)
    enc = OnnxSentenceEncoder(DEFAULT_ENCODER_DIR, threads=1)
    return enc, DictionaryIndex(load_names_tsv(path), enc)


def test_mined_examples_put_the_gold_name_first_and_exclude_gold_from_negatives(index):
    enc, idx = index
    pairs = [{"mention": "heart attack", "concept_ids": ["MESH:D1"]},
             {"mention": "heart attack", "concept_ids": ["MESH:D1"]},   # duplicate: one example
             {"mention": "gout", "concept_ids": ["MESH:D99"]}]          # gold not in dictionary: skipped
    ex = mine_examples(enc, idx, pairs, "test", k=5, negatives=3)
    assert len(ex) == 1
    assert ex[0].positive == "Heart Attack"
    assert len(ex[0].negatives) == 3
    assert not {"Heart Attack", "Myocardial Infarction"} & set(ex[0].negatives)


def test_synonym_examples_never_use_the_query_as_positive(index):
    enc, idx = index
    ex = mine_synonym_examples(enc, idx, n=10, source="syn", k=5, negatives=3)
    assert {e.query.lower() for e in ex} <= {"myocardial infarction", "heart attack", "diabetes mellitus",
                                             "sugar diabetes"}
    for e in ex:
        assert e.positive.lower() != e.query.lower()
        assert e.positive.lower() not in {n.lower() for n in e.negatives}


def test_tiny_training_run_saves_a_model_that_prefers_the_trained_positive(tmp_path):
    pytest.importorskip("torch")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    import torch

    from clin_linker.models.reranker.train import main

    examples = [RerankExample("heart attack", "Myocardial Infarction", ["Chest Pain", "Heart Failure"], "t"),
                RerankExample("sugar diabetes", "Diabetes Mellitus", ["Diabetes Insipidus", "Chest Pain"], "t")]
    save_examples(tmp_path / "ex.json.gz", examples, {"examples": 2})
    assert load_examples(tmp_path / "ex.json.gz")[0] == examples
    main(["--examples", str(tmp_path / "ex.json.gz"), "--out", str(tmp_path / "m"), "--layers", "1",
          "--epochs", "60", "--batch-queries", "2", "--group", "3", "--lr", "3e-4", "--warmup", "1",
          "--threads", "1", "--device", "cpu", "--pointwise-weight", "0.5"])
    summary = json.loads((tmp_path / "m" / "train_summary.json").read_text())
    assert summary["steps"] == 60 and summary["layers"] == 1 and summary["examples"] == 2
    assert summary["pointwise_weight"] == 0.5
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert model.config.num_hidden_layers == 1 and model.config.num_labels == 1
    with torch.no_grad():
        for e in examples:
            cands = [e.positive] + e.negatives
            logits = model(**tok([e.query] * len(cands), cands, padding=True, return_tensors="pt")).logits[:, 0]
            assert int(logits.argmax()) == 0
