"""Run-time cross-encoder: scores (mention in context, candidate) pairs with tokenizers + onnxruntime, no torch.

The exported graph (``models/reranker/export.py``) takes the pair ``inputs.PairEncoder`` builds,
``[CLS] left [unused0] mention [unused1] right [SEP] candidate ; domain [SEP]`` with token type 0/1, and returns
one logit per pair (``score``): higher = the candidate is more likely the mention's concept. The token budget is the
one the model was trained with (``artifact.json`` "budget"), so onnxruntime sees exactly the ids torch saw.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..artifacts import ArtifactInfo, read_artifact
from ..encoder_runtime import default_threads
from .features import CandidateView
from .inputs import MentionContext, PairEncoder, TokenBudget, candidate_text

#: ``artifact.json`` "kind" of a context cross-encoder artifact (a sentence encoder directory is refused).
KIND = "context-cross-encoder"

#: One mention's candidates to score: its context and the candidate texts (``inputs.candidate_text``).
Group = tuple[MentionContext, Sequence[str]]


class OnnxCrossEncoder:
    """Scores (context, candidate) pairs with an exported clin-linker reranker artifact."""

    def __init__(self, model_dir: str | Path, threads: int | None = None):
        self.info: ArtifactInfo = read_artifact(Path(model_dir))
        if self.info.meta.get("kind") != KIND:
            raise ValueError(
                f"{model_dir} holds a {self.info.meta.get('kind')!r} artifact, not a {KIND!r}: pass the directory "
                "written by `clin-linker model export-reranker` (rerankers from before the context model must be "
                "retrained: they read no context)"
            )
        self.pairs = PairEncoder.from_file(str(self.info.directory / "tokenizer.json"),
                                           TokenBudget(**self.info.meta.get("budget", {})))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.info.onnx_path), options, providers=["CPUExecutionProvider"])

    @property
    def model_id(self) -> str:
        """``model_id@hash8``, for NOTE_NLP.nlp_system."""
        return self.info.short_id

    def _run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        (scores,) = self.session.run(["score"], inputs)
        return np.asarray(scores, dtype=np.float32).reshape(-1)

    def score_mentions(self, contexts: Sequence[MentionContext], labels: Sequence[str],
                       candidates: Sequence[Sequence[CandidateView]], groups_per_call: int = 1) -> list[np.ndarray]:
        """Logits of each mention's candidates, each read as its matched name and domain (the label is not read:
        the cross-encoder sees the candidate's domain and the context instead)."""
        return self.score_groups([(ctx, [candidate_text(c.name, c.domain) for c in cands])
                                  for ctx, cands in zip(contexts, candidates)], groups_per_call)

    def score_groups(self, groups: Sequence[Group], groups_per_call: int = 1) -> list[np.ndarray]:
        """Logits of each group's candidates, ``groups_per_call`` groups per onnxruntime call.

        With ``groups_per_call=1`` a group's logits depend only on that group's own pairs (dynamic int8 scales
        activations over the whole call), so a mention gets the same scores however the notes were batched and
        re-runs write the same rows; larger values batch several mentions per call (fewer calls, batch-dependent
        int8 scaling). The context side is tokenized once per group, not once per candidate.
        """
        if groups_per_call < 1:
            raise ValueError(f"groups_per_call must be >= 1, got {groups_per_call}")
        queries = self.pairs.query_ids([ctx for ctx, _ in groups])
        cands = self.pairs.candidate_ids([c for _, names in groups for c in names])
        bounds = np.cumsum([0] + [len(names) for _, names in groups])
        out: list[np.ndarray] = []
        for start in range(0, len(groups), groups_per_call):
            stop = min(start + groups_per_call, len(groups))
            lo, hi = int(bounds[start]), int(bounds[stop])
            if hi == lo:
                out += [np.zeros(0, dtype=np.float32)] * (stop - start)
                continue
            q = [queries[g] for g in range(start, stop) for _ in range(bounds[g + 1] - bounds[g])]
            scores = self._run(self.pairs.assemble(q, cands[lo:hi]))
            out += [scores[bounds[g] - lo : bounds[g + 1] - lo] for g in range(start, stop)]
        return out


def load_reranker_model(model_dir: str | Path, threads: int | None = None):
    """The scorer of a reranker artifact by its ``kind``: the feature reranker (shipped) or a cross-encoder.

    Both answer ``score_mentions(contexts, labels, candidates, groups_per_call)`` with one logit per candidate.
    """
    from .feature_runtime import KIND as FEATURE_KIND, OnnxFeatureReranker

    kind = read_artifact(Path(model_dir)).meta.get("kind")
    if kind == FEATURE_KIND:
        return OnnxFeatureReranker(model_dir, threads)
    return OnnxCrossEncoder(model_dir, threads)
