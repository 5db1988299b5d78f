"""Run the NER model: texts in, character spans with OMOP-domain labels out (torch-free).

``WindowTagger`` holds everything except the network call (tokenize, cut windows, batch,
merge, decode), so the shipped ONNX tagger and the torch model evaluated during training go
through the same code and their scores are comparable.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts import read_artifact
from ..batching import equal_length_batches
from .labels import LABELS, Span
from .windows import (
    decode_spans,
    load_tokenizer,
    merge_windows,
    special_ids,
    tokenize_texts,
    window_bounds,
    window_ids,
)


#: Written into artifact.json ``quantization`` by the export (``models.ner.export``).
ONE_WINDOW_PER_RUN_NOTE = ("activations: onnxruntime's per-tensor dynamic int8, one window per run "
                           "(models/ner/runtime.py), no NaN guards")


class WindowTagger(ABC):
    """Windowed BIO tagging over any backend that maps padded id batches to logits."""

    #: Most windows per backend call, whatever ``predict`` is asked (None: no cap).
    windows_per_run: int | None = None

    def __init__(self, tokenizer_path: Path, max_len: int, stride: int) -> None:
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.special = special_ids(self.tokenizer)
        self.max_len = max_len
        self.stride = stride

    @abstractmethod
    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits ``[batch, seq, n_tags]`` for int64 ``[batch, seq]`` ids and mask."""

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> list[list[Span]]:
        """Spans ``(start, end, label)`` per text, sorted by position.

        Windows of all texts are pooled and batched only with windows of the same length
        (``equal_length_batches``), at most ``windows_per_run`` at a time: no padding is computed, and a
        window's tags do not depend on which other windows or notes share its batch.
        """
        batch_size = min(batch_size, self.windows_per_run or batch_size)
        docs = tokenize_texts(self.tokenizer, texts)
        bounds = [window_bounds(len(d), self.max_len, self.stride) for d in docs]
        items = [(d, w) for d, doc_bounds in enumerate(bounds) for w in range(len(doc_bounds))]
        inputs = [window_ids(docs[d], bounds[d][w], self.special) for d, w in items]
        window_tags: list[list[np.ndarray | None]] = [[None] * len(b) for b in bounds]
        for batch in equal_length_batches([len(ids) for ids in inputs], batch_size):
            ids = np.array([inputs[k] for k in batch], dtype=np.int64)
            tags = self.logits(ids, np.ones_like(ids)).argmax(-1)
            for row, k in enumerate(batch):
                d, w = items[k]
                window_tags[d][w] = tags[row, 1 : len(inputs[k]) - 1]  # drop [CLS]/[SEP]
        return [
            decode_spans(doc, merge_windows(len(doc), doc_bounds, tags))
            for doc, doc_bounds, tags in zip(docs, bounds, window_tags)
        ]


class OnnxNerTagger(WindowTagger):
    """The shipped tagger: an onnxruntime session loaded once, CPU, fixed thread count, one window per run.

    One window per run because the int8 graph quantises activations with onnxruntime's per-tensor dynamic scale:
    with one window in the tensor the scale is that window's own, so a note's spans never depend on the notes
    tagged with it (issue 14), and onnxruntime keeps its fused ``DynamicQuantizeMatMul`` kernels. Measured on 60
    CodiEsp case reports (2 cores): 2.3-2.5 s; the same network quantised per row (models/row_quantization.py) in
    batches of 16 equal-length windows took 3.1 s, and per tensor in batches of 16 (batch-dependent) 3.1 s too. A
    254-token window already fills onnxruntime's int8 GEMM, so batching windows buys nothing.

    ``onnx_file`` overrides the artifact's model file (used to score the fp32 export with the
    same tokenizer and settings as the int8 one).
    """

    windows_per_run = 1

    def __init__(self, model_dir: Path, threads: int = 2, onnx_file: Path | None = None) -> None:
        import onnxruntime as ort

        info = read_artifact(Path(model_dir))
        if tuple(info.meta["labels"]) != LABELS:
            raise ValueError(f"{model_dir} was trained for labels {info.meta['labels']}, this code expects {LABELS}")
        super().__init__(info.directory / "tokenizer.json", info.meta["max_len"], info.meta["stride"])
        self.info = info
        options = ort.SessionOptions()
        # DESIGN §4: set threads explicitly; ORT's default grabs every core and collapses
        # when other pipeline stages share them.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_file or info.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self.session.get_inputs()}

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
        return self.session.run(["logits"], {k: v for k, v in feed.items() if k in self._input_names})[0]
