"""A text's model output does not depend on what it is batched with (issue 14: per-row int8 activations, batches
without padding), checked on the shipped models and on a graph quantised the way every export is."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from clin_linker.beam_jobs.cli.run import sample_notes_path
from clin_linker.models.artifacts import ARTIFACTS_DIR
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.models.row_quantization import per_row_activations
from clin_linker.pipeline.ner_component import load_tagger

MENTIONS = ["type 2 diabetes mellitus", "CHF", "essential hypertension", "shortness of breath on exertion",
            "left ventricular ejection fraction of 35 percent", "MI", "metformin 500 mg twice daily"]


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    return [json.loads(line)["note_text"] for line in sample_notes_path().read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("artifact", ["encoder_sapbert_int8", "encoder_minilm_int8"])
def test_a_mention_vector_is_the_same_alone_and_in_any_batch(artifact):
    encoder = OnnxSentenceEncoder(ARTIFACTS_DIR / artifact, threads=1)
    alone = np.stack([encoder.encode([text])[0] for text in MENTIONS])
    together = encoder.encode(MENTIONS)
    shuffled = encoder.encode(MENTIONS[::-1] + ["pneumonia", "chronic kidney disease stage 3"])[:len(MENTIONS)][::-1]
    assert np.array_equal(alone, together) and np.array_equal(alone, shuffled)
    assert np.allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-4)  # still the pooled, normalised embedding


def test_a_note_gets_the_same_spans_alone_and_with_other_notes(sample_texts):
    tagger = load_tagger(None, threads=1)
    alone = [tagger.predict([text])[0] for text in sample_texts[:8]]
    together = tagger.predict(sample_texts[:8], batch_size=16)
    in_pairs = [spans for i in range(0, 8, 2) for spans in tagger.predict(sample_texts[i:i + 2], batch_size=2)]
    assert alone == together == in_pairs
    assert sum(map(len, alone)) > 50  # the notes have mentions: the comparison is not of empty lists


def _tiny_quantized_model(tmp_path) -> tuple[onnx.ModelProto, np.ndarray]:
    """x @ W through onnxruntime's own dynamic quantisation, as ``models.onnx_export.quantize_int8`` runs it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])],
        [numpy_helper.from_array(weight, "w")])
    fp32 = tmp_path / "fp32.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
    quantize_dynamic(str(fp32), str(tmp_path / "int8.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    return onnx.load(str(tmp_path / "int8.onnx")), weight


def _run(model: onnx.ModelProto, x: np.ndarray, level) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def test_per_row_graph_is_batch_independent_and_right_at_every_optimisation_level(tmp_path):
    model, weight = _tiny_quantized_model(tmp_path)
    rng = np.random.default_rng(1)
    row = rng.normal(size=(1, 3, 16)).astype(np.float32)
    loud = (rng.normal(size=(1, 3, 16)) * 50).astype(np.float32)  # a batch mate with a much wider range
    per_tensor = _run(model, np.concatenate([row, loud]), ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0]
    assert not np.array_equal(per_tensor, _run(model, row, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0])
    per_row = per_row_activations(model)
    levels = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
    for level in levels:  # the ENABLE_ALL fusions must not misread the per-row scale
        alone = _run(per_row, row, level)[0]
        assert np.array_equal(alone, _run(per_row, np.concatenate([row, loud]), level)[0])
        assert np.allclose(alone, row[0] @ weight, rtol=0.05, atol=0.05 * np.abs(row[0] @ weight).max())
    assert np.array_equal(_run(per_row, row, levels[0]), _run(per_row, row, levels[1]))


def test_per_row_refuses_quantized_activations_it_cannot_rescale():
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    with pytest.raises(ValueError, match="DequantizeLinear"):
        per_row_activations(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_dropping_the_nan_guards_keeps_the_output_and_leaves_nothing_unused():
    from clin_linker.models.row_quantization import without_nan_guards

    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["p"], axis=-1), helper.make_node("IsNaN", ["p"], ["nan"]),
         helper.make_node("Where", ["nan", "zero", "p"], ["guarded"]), helper.make_node("Mul", ["guarded", "x"], ["y"])],
        "guarded", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], [zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(2).normal(size=(2, 5)).astype(np.float32)
    before = _run(model, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    stripped = without_nan_guards(model)
    assert [node.op_type for node in stripped.graph.node] == ["Softmax", "Mul"] and not stripped.graph.initializer
    assert np.array_equal(before, _run(stripped, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL))
