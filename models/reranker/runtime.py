"""Run-time cross-encoder: scores (query, candidate name) pairs with tokenizers + onnxruntime, no torch.

The exported graph (``models/reranker/export.py``) takes a BERT sentence pair, ``[CLS] query [SEP] name [SEP]``
with token type 0/1, and returns one logit per pair (``score``): higher = the name is more likely the
mention's concept. Pairs are truncated longest-first to the ``max_length`` the model was trained with, as the
HF tokenizer did in training, so ONNX sees exactly the token ids torch saw.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..artifacts import ArtifactInfo, read_artifact
from ..encoder_runtime import default_threads

#: ``artifact.json`` "kind" of a cross-encoder artifact (a sentence encoder directory is refused).
KIND = "cross-encoder"


class OnnxCrossEncoder:
    """Scores (query, name) pairs with an exported clin-linker reranker artifact."""

    def __init__(self, model_dir: str | Path, threads: int | None = None):
        self.info: ArtifactInfo = read_artifact(Path(model_dir))
        if self.info.meta.get("kind") != KIND:
            raise ValueError(
                f"{model_dir} holds a {self.info.meta.get('kind')!r} artifact, not a {KIND!r}: pass the directory "
                "written by `clin-linker model export-reranker`"
            )
        self.max_length = int(self.info.meta.get("max_length", 48))
        self.tokenizer = Tokenizer.from_file(str(self.info.directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.info.onnx_path), options, providers=["CPUExecutionProvider"])

    @property
    def model_id(self) -> str:
        """``model_id@hash8``, for NOTE_NLP.nlp_system."""
        return self.info.short_id

    def _run(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = e.attention_mask
            types[row, :n] = e.type_ids
        (scores,) = self.session.run(["score"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return np.asarray(scores, dtype=np.float32).reshape(-1)

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
        """Logits of ``pairs`` (float32, input order), ``batch_size`` pairs per onnxruntime call.

        Pairs are sorted by token length so a batch pads little. Note: dynamic int8 quantisation scales
        activations over the whole batch, so a pair's logit moves slightly (~1e-2) with its batch mates; use
        :meth:`score_groups` where results must not depend on what else was scored.
        """
        out = np.zeros(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        encodings = self.tokenizer.encode_batch([(q, n) for q, n in pairs])
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._run([encodings[i] for i in idx])
        return out

    def score_groups(self, groups: Sequence[Sequence[tuple[str, str]]], groups_per_call: int = 1) -> list[np.ndarray]:
        """Logits of each group of pairs (e.g. one mention's top-k), ``groups_per_call`` groups per onnxruntime call.

        With ``groups_per_call=1`` a group's logits depend only on that group's own pairs, so a mention gets
        the same scores however the notes were batched (re-runs write the same rows); larger values batch
        several mentions per call (fewer calls, batch-dependent int8 scaling).
        """
        if groups_per_call < 1:
            raise ValueError(f"groups_per_call must be >= 1, got {groups_per_call}")
        flat = [(q, n) for g in groups for q, n in g]
        if not flat:
            return [np.zeros(0, dtype=np.float32) for _ in groups]
        encodings = self.tokenizer.encode_batch(flat)
        bounds = np.cumsum([0] + [len(g) for g in groups])
        out: list[np.ndarray] = []
        for start in range(0, len(groups), groups_per_call):
            lo, hi = bounds[start], bounds[min(start + groups_per_call, len(groups))]
            scores = self._run(encodings[lo:hi]) if hi > lo else np.zeros(0, dtype=np.float32)
            for g in range(start, min(start + groups_per_call, len(groups))):
                out.append(scores[bounds[g] - lo : bounds[g + 1] - lo])
        return out
