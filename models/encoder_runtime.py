"""Run-time sentence encoder: tokenizers + onnxruntime, no torch (DESIGN §1).

One class serves the index build (ontologies) and the candidate generator (pipeline), so names and
mentions are always embedded the same way.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
from tqdm import tqdm

from .artifacts import ArtifactInfo, read_artifact
from .batching import equal_length_batches


def default_threads() -> int:
    """Threads for onnxruntime: CLIN_LINKER_THREADS, else all cores (DESIGN §4: always set explicitly)."""
    return int(os.environ.get("CLIN_LINKER_THREADS", os.cpu_count() or 1))


class OnnxSentenceEncoder:
    """Embeds short texts to L2-normalised vectors with an exported clin-linker encoder artifact."""

    def __init__(self, model_dir: Path, threads: int | None = None):
        self.info: ArtifactInfo = read_artifact(Path(model_dir))
        self.dimension = int(self.info.meta["dimension"])
        self.tokenizer = Tokenizer.from_file(str(self.info.directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.info.meta.get("max_length", 64)))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.info.onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: str | None = None) -> np.ndarray:
        """Return a float32 array (len(texts), dimension), rows in input order.

        A batch holds only texts of the same token length, so nothing is padded: with per-row int8 activations
        (``models.row_quantization``) a text's vector is then bit-for-bit the same whatever else is encoded with it,
        which is what lets the pipeline batch mentions and memoise them and still write the same rows for a note
        however notes are batched. Sorting by length keeps the batches full.
        ``progress`` is a tqdm description; None keeps it quiet (per-document calls in the pipeline).
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        bar = tqdm(total=len(texts), desc=progress, unit="text", disable=progress is None)
        for idx in equal_length_batches([len(e.ids) for e in encodings], batch_size):
            ids = np.array([encodings[i].ids for i in idx], dtype=np.int64)
            (vectors,) = self.session.run(
                ["sentence_embedding"],
                {"input_ids": ids, "attention_mask": np.array([encodings[i].attention_mask for i in idx], np.int64),
                 "token_type_ids": np.array([encodings[i].type_ids for i in idx], np.int64)},
            )
            out[idx] = vectors
            bar.update(len(idx))
        bar.close()
        return out

