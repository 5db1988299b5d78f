"""Run time of the coder's scorer: the ONNX tree ensemble that turns a candidate code's features into a probability.

Torch-free and sklearn-free (onnxruntime only), like every shipped model. The artifact directory holds
``model.onnx``, ``artifact.json`` (feature names, the accept threshold, what it was trained on) and whatever the
caller stores next to it (the pipeline's coder keeps its lexicon there).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..artifacts import file_sha256, read_artifact


class CoderScorer:
    """``scorer(features) -> probabilities``; ``features``: (n, len(feature_names)) in the artifact's order."""

    def __init__(self, directory: Path, threads: int = 1):
        self.info = read_artifact(Path(directory))
        if self.info.meta.get("kind") != "document-coder":
            raise ValueError(f"{directory} is a {self.info.meta.get('kind')!r} artifact, not a document coder; "
                             "train one with `clin-linker train coder`")
        if file_sha256(self.info.onnx_path) != self.info.sha256:
            raise ValueError(f"{self.info.onnx_path} does not match the sha256 in its artifact.json: the model file "
                             "was changed or damaged; retrain or restore it")
        self.feature_names: tuple[str, ...] = tuple(self.info.meta["feature_names"])
        self.threshold: float = float(self.info.meta["threshold"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.info.onnx_path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = "probabilities"

    def columns(self, names: Sequence[str]) -> list[int]:
        """Where each of the model's features sits among the ``names`` the caller computes: a model trained before
        a feature was added reads the features it knows. Fails when the model needs one the caller does not compute.
        """
        missing = [name for name in self.feature_names if name not in names]
        if missing:
            raise ValueError(f"{self.info.directory}: the coder model was trained on features this version does not "
                             f"compute ({', '.join(missing)}); retrain it with `clin-linker train coder`")
        return [list(names).index(name) for name in self.feature_names]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        x = np.ascontiguousarray(features, dtype=np.float32)
        probabilities = self._session.run([self._output], {self._input: x})[0]
        return np.asarray(probabilities)[:, 1]
