"""A tiny bi-encoder training run (2 MNRL steps on CPU) writes a resumable checkpoint and a final model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


SYNONYMS = [
    ("heart attack", "myocardial infarction"), ("MI", "myocardial infarction"),
    ("high blood pressure", "hypertension"), ("HTN", "hypertension"),
    ("sugar diabetes", "diabetes mellitus"), ("T2DM", "type 2 diabetes mellitus"),
    ("shortness of breath", "dyspnea"), ("SOB", "dyspnea"), ("kidney failure", "renal failure"),
    ("fits", "seizure"), ("stroke", "cerebrovascular accident"), ("CVA", "cerebrovascular accident"),
    ("flu", "influenza"), ("belly pain", "abdominal pain"), ("chest pain", "thoracic pain"),
    ("heartburn", "gastroesophageal reflux"), ("GERD", "gastroesophageal reflux"),
    ("runny nose", "rhinorrhea"), ("pink eye", "conjunctivitis"), ("hives", "urticaria"),
]


def test_make_batches_never_repeats_a_group():
    from clin_linker.models.biencoder.data import Pair
    from clin_linker.models.biencoder.train import make_batches

    pairs = [Pair(f"a{i}", f"p{i}", f"g{i % 7}", "synonyms") for i in range(70)]
    batches = make_batches(pairs, 7, seed=1)
    assert batches and all(len({p.group for p in b}) == len(b) == 7 for b in batches)
    assert make_batches(pairs, 7, seed=1) == batches  # seeded


def test_tiny_training_run_writes_a_checkpoint_and_resumes(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    from clin_linker.models.biencoder.data import Pair
    from clin_linker.models.biencoder.train import train

    pairs = [Pair(a, p, p, "synonyms") for a, p in SYNONYMS]
    state = train(tmp_path / "run", max_pairs=None, batch_size=8, lr=1e-5, warmup=1, mine_pairs=0,
                  save_every=1, eval_every=0, threads=2, pairs_override=pairs, quick_dev=False)
    assert state["steps_done"]["mnrl"] == 2  # 20 pairs, 18 distinct groups -> 2 full batches of 8
    ckpt = tmp_path / "run" / "checkpoint"
    assert json.loads((ckpt / "state.json").read_text())["phase"] == "done"
    assert (ckpt / "optimizer.pt").exists() and (ckpt / "model").is_dir()
    assert (tmp_path / "run" / "model_final").is_dir()
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["args"]["batch_size"] == 8
    again = train(tmp_path / "run", max_pairs=None, batch_size=8, mine_pairs=0, eval_every=0, resume=True,
                  pairs_override=pairs, quick_dev=False)
    assert again["phase"] == "done" and again["steps_done"]["mnrl"] == 2



def test_mine_set_takes_every_distinct_mention_pair_first():
    from clin_linker.models.biencoder.data import Pair
    from clin_linker.models.biencoder.train import choose_mine_set

    mentions = [Pair(f"m{i}", f"n{i}", f"MESH:D{i}", "mention:bc5cdr") for i in range(5)] * 3  # repeated as in training
    medic = [Pair(f"s{i}", f"t{i}", f"MESH:C{i}", "synonyms") for i in range(40)]
    other = [Pair(f"h{i}", f"k{i}", f"HP:{i}", "synonyms") for i in range(40)]
    chosen = choose_mine_set(mentions + medic + other, 13, seed=3)
    assert len(chosen) == 13 == len({(p.anchor, p.positive) for p in chosen})
    assert {p.anchor for p in chosen if p.source.startswith("mention")} == {f"m{i}" for i in range(5)}
    assert sum(p.group.startswith("MESH:C") for p in chosen) == 6  # 3/4 of the 8 left
    assert choose_mine_set(mentions + medic + other, 13, seed=3) == chosen


def test_mining_over_all_names_finds_several_negatives_outside_the_mined_groups():
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    from clin_linker.models.biencoder.data import Pair, SynonymGroups
    from clin_linker.models.biencoder.train import base_model_path, mine_hard_negatives

    names = {"g_mi": ["myocardial infarction", "heart attack"], "g_angina": ["angina pectoris"],
             "g_cardiac_arrest": ["cardiac arrest"], "g_hives": ["urticaria", "hives"],
             "g_heart_failure": ["heart failure"]}
    groups = SynonymGroups(names=names, root_of={}, stats={})
    model = SentenceTransformer(base_model_path(), device="cpu")
    pair = Pair("heart attack", "myocardial infarction", "g_mi", "mention:test")
    own_only = mine_hard_negatives(model, [pair], groups, negatives=2)
    assert own_only == []  # the pair's own group holds no other concept
    (row,) = mine_hard_negatives(model, [pair], groups, negatives=2, over_all_names=True)
    assert row[:2] == ("heart attack", "myocardial infarction") and row[-1] == "g_mi"
    negs = row[2:-1]
    assert len(negs) == 2 and not set(negs) & set(names["g_mi"])
    assert "hives" not in negs and "urticaria" not in negs  # the nearest other concepts, not the farthest
