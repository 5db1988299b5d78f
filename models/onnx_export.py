"""Export a torch module to ONNX and quantize it to int8: the one way every network we ship is built.

DESIGN §4 (measured): export with ``torch.onnx.export(..., dynamo=False)``, then
``quantize_dynamic(per_channel=True)``; per-tensor int8 loses too much (cosine 0.918 vs 0.985).
Training-time only: imports torch.
"""
from __future__ import annotations

from pathlib import Path

import torch


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int = 17,
) -> Path:
    """Export ``module`` (in eval mode) to an fp32 ONNX file at ``path``."""
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    module.eval()  # export may restore train mode on the wrapped module (DESIGN §4)
    return path


def quantize_int8(fp32_path: Path, int8_path: Path, keep_fp32: tuple[str, ...] = (), per_row: bool = True) -> Path:
    """Dynamic int8, per-channel weights (the setting DESIGN §4 measured as safe), without the export's NaN guards.

    ``per_row``: quantize activations per row (``models.row_quantization``), for models that run batches of texts
    (the sentence encoders). ``False`` keeps onnxruntime's per-tensor activations and its fused kernels, for a model
    whose runtime sends one input per run (the NER tagger, ``models.ner.runtime``), where a per-tensor scale is
    already the input's own.

    ``keep_fp32`` names graph nodes left unquantized (a model whose int8 loss is measured too
    high at one layer); each must exist in the graph, so a renamed node fails loudly.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if keep_fp32:
        names = {node.name for node in onnx.load(str(fp32_path), load_external_data=False).graph.node}
        missing = sorted(set(keep_fp32) - names)
        if missing:
            raise ValueError(f"keep_fp32 nodes not in {fp32_path.name}: {missing}")
    import onnx

    from .row_quantization import per_row_activations, without_nan_guards

    quantize_dynamic(str(fp32_path), str(int8_path), per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=list(keep_fp32))
    # a text's output must not depend on its batch mates (issue 14): per-row scales, or one text per run
    model = onnx.load(str(int8_path))
    onnx.save(without_nan_guards(per_row_activations(model) if per_row else model), str(int8_path))
    return int8_path

