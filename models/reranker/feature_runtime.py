"""Run-time feature reranker: gradient-boosted trees over ``features.group_features``, onnxruntime only, no torch.

The artifact (written by ``feature_train.export_feature_reranker``) holds the tree ensemble as ONNX
(``TreeEnsembleClassifier``) and names the general sentence encoder its context and second-opinion cosines are
computed with: a shipped encoder artifact (``encoder_minilm_int8``), checked by hash, so a reranker never reads
vectors from another encoder than it was trained on. Scores are the trees' log-odds that a candidate is the
mention's concept: the ``logit`` the NIL calibration (``calibration.NilCalibrator``) is fitted on.

Trees score each row on its own, so a mention's scores never depend on which other mentions were scored with it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..artifacts import ARTIFACTS_DIR, ArtifactInfo, read_artifact
from ..encoder_runtime import OnnxSentenceEncoder, default_threads
from .features import FEATURE_NAMES, CandidateView, TextVectors, group_features
from .inputs import MentionContext

#: ``artifact.json`` "kind" of a feature reranker artifact.
KIND = "context-feature-reranker"
#: Log-odds clip: a probability of exactly 0 or 1 from the trees stays a finite logit.
LOGIT_CLIP = 12.0


def context_encoder_dir(meta: dict) -> Path:
    """The shipped encoder artifact a feature reranker reads its cosines with (``meta["context_encoder"]``)."""
    spec = meta.get("context_encoder") or {}
    directory = ARTIFACTS_DIR / str(spec.get("artifact", ""))
    if not spec.get("artifact") or not (directory / "artifact.json").exists():
        raise FileNotFoundError(f"the feature reranker needs the encoder artifact {spec.get('artifact')!r} under "
                                f"{ARTIFACTS_DIR}; it ships with clin-linker: reinstall the package")
    return directory


class OnnxFeatureReranker:
    """Scores (mention in context, candidate) pairs with an exported feature reranker artifact."""

    def __init__(self, model_dir: str | Path, threads: int | None = None):
        self.info: ArtifactInfo = read_artifact(Path(model_dir))
        if self.info.meta.get("kind") != KIND:
            raise ValueError(f"{model_dir} holds a {self.info.meta.get('kind')!r} artifact, not a {KIND!r}")
        names = tuple(self.info.meta.get("feature_names", ()))
        if names != FEATURE_NAMES:
            raise ValueError(f"{model_dir} was trained on features {names}, this clin-linker computes "
                             f"{FEATURE_NAMES}: retrain it with `clin-linker train feature-reranker`")
        encoder = OnnxSentenceEncoder(context_encoder_dir(self.info.meta), threads=threads)
        wanted = self.info.meta["context_encoder"].get("sha256", "")
        if wanted and encoder.info.sha256 != wanted:
            raise ValueError(f"{model_dir} was trained with encoder {wanted[:8]}, the installed "
                             f"{encoder.info.short_id} differs: retrain the reranker")
        self.vectors = TextVectors(encoder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.info.onnx_path), options, providers=["CPUExecutionProvider"])
        self._output = next(o.name for o in self.session.get_outputs() if o.name != "label")

    @property
    def model_id(self) -> str:
        """``model_id@hash8``, for NOTE_NLP.nlp_system."""
        return self.info.short_id

    def clear_memo(self) -> None:
        """Forget the memoised text vectors (benchmarks time cold passes)."""
        self.vectors.clear()

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of "right concept" per feature row."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        (proba,) = self.session.run([self._output], {"features": np.asarray(features, dtype=np.float32)})
        p = np.clip(np.asarray(proba, dtype=np.float64)[:, 1], 1e-12, 1 - 1e-12)
        return np.clip(np.log(p / (1 - p)), -LOGIT_CLIP, LOGIT_CLIP).astype(np.float32)

    def score_mentions(self, contexts: Sequence[MentionContext], labels: Sequence[str],
                       candidates: Sequence[Sequence[CandidateView]], groups_per_call: int = 1) -> list[np.ndarray]:
        """Logits of each mention's candidates, in the order given. ``groups_per_call`` is accepted for the
        cross-encoder's signature; trees are batch-independent, so every mention is scored in one call."""
        feats = [group_features(ctx, label, cands, self.vectors)
                 for ctx, label, cands in zip(contexts, labels, candidates)]
        flat = self.logits(np.vstack(feats)) if feats else np.zeros(0, dtype=np.float32)
        bounds = np.cumsum([0] + [len(f) for f in feats])
        return [flat[bounds[i]:bounds[i + 1]] for i in range(len(feats))]
