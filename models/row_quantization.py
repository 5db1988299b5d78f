"""Per-row dynamic int8 activations: make a dynamically quantized graph give the same output for a text whatever
else shares its batch.

Why: onnxruntime's ``quantize_dynamic`` inserts ``DynamicQuantizeLinear`` before every integer MatMul, and that op
takes ONE scale and zero point from the min and max of the whole activation tensor: every window or mention of a
padded batch. A text's vector, and so its spans, codes and scores, then depended on which other texts it was batched
with, how many workers split the notes and whether a bundle was retried (issue 14: 803 vs 792 vs 806 NOTE_NLP rows).

The rewrite replaces each ``DynamicQuantizeLinear`` with symmetric quantization per row (per token): the scale is the
row's largest absolute value / 127 and the zero point the constant 128 (uint8), computed from that row alone. The
three outputs keep their names and meaning, so ``MatMulInteger`` (scalar zero point, as onnxruntime requires) and
the scale ``Mul`` that follow are untouched; a ``[..., 1]`` scale broadcasts against the per-channel weight scales.
Integer accumulation is exact, so a row's result depends on that row only. Per-row scales are also finer than one
per tensor (an outlier token no longer coarsens every other token's grid); the dev scores are in the model cards.

Padding can still change the fp32 reductions of attention in the last bit; the encoder runtime batches only texts
of equal token length (``models.encoder_runtime``), so a batch holds no padding at all.

Speed: the quantization is one ``QuantizeLinear`` per activation (rows flattened, a per-axis scale), and
:func:`without_nan_guards` removes the export's NaN checks after each attention softmax, which no input of ours can
trigger. Both are applied to the sentence encoders (:func:`requantize_artifact`, and
``models.onnx_export.quantize_int8`` for new exports). The NER tagger does not need the rewrite: its windows are
long enough to run one per call, where onnxruntime's per-tensor scale is the window's own and its fused kernels are
faster than any per-row graph (``models.ner.runtime.OnnxNerTagger``).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .artifacts import file_sha256

#: Written into artifact.json ``quantization`` so a reader (and ``is_per_row``) can tell the graph kind.
PER_ROW_NOTE = "activations: per-row symmetric int8 via QuantizeLinear, no NaN guards (models/row_quantization.py)"
_ZERO_POINT = 128
_EPSILON = 1e-8


def _replacement(node: onnx.NodeProto, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``node``'s three outputs (quantized, scale, zero point) per row of its input.

    The rows are flattened to ``[rows, width]`` so that one ``QuantizeLinear`` with a per-axis scale (a 1-D scale
    along axis 0) divides, rounds, shifts and casts in a single kernel; separate Mul/Round/Add/Cast nodes made the
    NER model 40% slower than onnxruntime's fused per-tensor kernels.
    """
    (x,) = node.input
    quantized, scale, zero_point = node.output
    n = lambda suffix: f"{prefix}/{suffix}"  # noqa: E731 - local name maker
    constants = [
        numpy_helper.from_array(np.array(_EPSILON, np.float32), n("epsilon")),
        numpy_helper.from_array(np.array(127.0, np.float32), n("levels")),
        numpy_helper.from_array(np.array([1], np.int64), n("one")),
        numpy_helper.from_array(np.array(_ZERO_POINT, np.uint8), zero_point),
    ]
    # |x| / (absmax / 127) <= 127, so every value lands in [1, 255] around the zero point 128: nothing saturates
    nodes = [
        helper.make_node("Flatten", [x], [n("rows")], name=n("Flatten"), axis=-1),
        helper.make_node("Abs", [n("rows")], [n("abs")], name=n("Abs")),
        helper.make_node("ReduceMax", [n("abs")], [n("absmax")], name=n("ReduceMax"), axes=[1], keepdims=0),
        helper.make_node("Max", [n("absmax"), n("epsilon")], [n("range")], name=n("Max")),
        helper.make_node("Div", [n("range"), n("levels")], [n("row_scale")], name=n("Scale")),
        helper.make_node("Shape", [n("row_scale")], [n("count")], name=n("Count")),
        helper.make_node("ConstantOfShape", [n("count")], [n("row_zero_point")], name=n("ZeroPoints"),
                         value=numpy_helper.from_array(np.array([_ZERO_POINT], np.uint8))),
        helper.make_node("QuantizeLinear", [n("rows"), n("row_scale"), n("row_zero_point")], [n("quantized_rows")],
                         name=n("Quantize"), axis=0),
        helper.make_node("Shape", [x], [n("shape")], name=n("Shape")),
        helper.make_node("Reshape", [n("quantized_rows"), n("shape")], [quantized], name=n("Unflatten")),
        helper.make_node("Shape", [x], [n("leading")], name=n("Leading"), end=-1),
        helper.make_node("Concat", [n("leading"), n("one")], [n("scale_shape")], name=n("ScaleShape"), axis=0),
        helper.make_node("Reshape", [n("row_scale"), n("scale_shape")], [scale], name=n("RowScale")),
    ]
    return nodes, constants


def without_nan_guards(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the ``Where(IsNaN(p), 0, p)`` the torch export puts after every attention softmax.

    The guard only matters for a query whose keys are all masked, which cannot happen here: every input keeps its
    [CLS] token, and the runtimes do not pad at all. Without it the output is bit-for-bit the same and each layer
    skips two passes over its ``[batch, heads, seq, seq]`` attention tensor (about 11% of the NER model's time).
    """
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    kept_by: dict[str, str] = {}
    for node in graph.node:
        check = producers.get(node.input[0]) if node.op_type == "Where" else None
        if check is not None and check.op_type == "IsNaN" and check.input[0] == node.input[2]:
            kept_by[node.output[0]] = node.input[2]
    nodes = [node for node in graph.node if node.output[0] not in kept_by]
    for node in nodes:
        for position, name in enumerate(node.input):
            node.input[position] = kept_by.get(name, name)
    while True:  # the guards' checks and fill values are now unused: drop them (onnxruntime warns of each)
        used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
        pruned = [node for node in nodes if node.op_type not in ("IsNaN", "Constant") or node.output[0] in used]
        if len(pruned) == len(nodes):
            break
        nodes = pruned
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _scale_after_product(graph: onnx.GraphProto, scale: str,
                         consumers: dict[str, list[tuple[onnx.NodeProto, int]]]) -> None:
    """Move the per-row scale out of ``Mul(activation scale, weight scale)`` to after the product's use.

    ``y = Cast(MatMulInteger(...)) * (s_row * s_weight)`` becomes ``y = (Cast(...) * s_weight) * s_row``: the same
    value, but onnxruntime's MatMulIntegerToFloat fusion (which reads a scale as per tensor or per column, never per
    row) now sees only the weight scale, so the graph is right at every optimization level.
    """
    for product_mul, _ in consumers.get(scale, []):
        weight_scale = next(name for name in product_mul.input if name != scale)
        (product,) = product_mul.output
        for use, position in consumers.get(product, []):
            if use.op_type != "Mul":
                raise ValueError(f"{product_mul.name}: the scale product feeds {use.op_type}, not Mul")
            (output,) = use.output
            partial = f"{use.name or output}/weight_scaled"
            use.input[position] = weight_scale
            use.output[0] = partial
            graph.node.append(helper.make_node("Mul", [partial, scale], [output], name=f"{partial}/row_scaled"))
        graph.node.remove(product_mul)


def per_row_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return ``model`` with every ``DynamicQuantizeLinear`` computed per row (see the module docstring).

    A graph without any is returned unchanged; one whose quantized activations feed anything but ``MatMulInteger``
    (as input A) and the scale ``Mul`` is refused, because a per-row scale would be wrong there.
    """
    graph = model.graph
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, position))
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "DynamicQuantizeLinear":
            continue
        quantized, scale, zero_point = node.output
        uses = {(c.op_type, p, role) for role, out in (("q", quantized), ("s", scale), ("z", zero_point))
                for c, p in consumers.get(out, [])}
        allowed = {("MatMulInteger", 0, "q"), ("MatMulInteger", 2, "z"), ("Mul", 0, "s"), ("Mul", 1, "s")}
        if not uses <= allowed:
            raise ValueError(f"{node.name}: its outputs feed {sorted(uses - allowed)}; only MatMulInteger input A and "
                             "the scale Mul can take per-row scales")
        nodes, constants = _replacement(node, f"per_row_{index}")
        graph.node.extend(nodes)
        graph.initializer.extend(constants)
        graph.node.remove(node)
        _scale_after_product(graph, scale, consumers)
    _sort_topologically(graph)
    onnx.checker.check_model(model)
    return model


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """ONNX requires nodes in dependency order; the rewrite appended its nodes at the end."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise ValueError("the rewritten graph has a cycle or a missing input")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        pending = [node for node in pending if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def requantize_artifact(directory: Path) -> dict:
    """Rewrite an exported artifact's ``model.onnx`` in place with per-row activations and update its
    ``artifact.json`` (sha256, quantization note); returns the new artifact.json content. Already rewritten: a no-op."""
    meta_path = Path(directory) / "artifact.json"
    meta = json.loads(meta_path.read_text())
    if PER_ROW_NOTE in meta.get("quantization", ""):
        return meta
    onnx_path = Path(directory) / meta.get("onnx_file", "model.onnx")
    model = without_nan_guards(per_row_activations(onnx.load(str(onnx_path))))
    rewritten = onnx_path.with_suffix(".per_row.tmp")
    onnx.save(model, str(rewritten))
    os.replace(rewritten, onnx_path)  # a new file: copies hard-linked to the old one (saved pipelines) keep it
    meta["sha256"] = file_sha256(onnx_path)
    meta["quantization"] = "; ".join(filter(None, [meta.get("quantization", "onnxruntime dynamic int8, per-channel "
                                                                                "weights"), PER_ROW_NOTE]))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


if __name__ == "__main__":  # python -m clin_linker.models.row_quantization ARTIFACT_DIR...
    for argument in sys.argv[1:]:
        print(argument, requantize_artifact(Path(argument))["sha256"])
