"""The linker's second phase: cross-encoder reranking of the retrieved candidates, then NIL abstention.

Used by the ``clin_linker`` component when its config sets ``rerank = true`` (off by default). For each mention:

1. *decisive* mentions (``skip_exact``: a vocabulary name is spelled like the mention, score 1.0) are linked as
   retrieved, without a cross-encoder call;
2. otherwise the top ``rerank_k`` candidates are scored as (the mention marked in its context, the candidate's
   matched name and domain) pairs, the shape the reranker was trained on (``models.reranker.inputs``), and
   ordered by calibrated probability (``models.reranker.scoring``);
3. below the NIL threshold the mention's concept is None; its reranked candidates stay on the span.

Results are cached per (context, label, reranked candidates) for the life of the component, with the text around
the mention lower-cased and whitespace-collapsed (the mention itself keeps its case: "MS" is a short form, "ms" may
not be): the models read the surrounding text uncased, so every context sharing a key gets exactly the same inputs
and the cache never changes a result (it pays for templated notes and repeated sentences). A cross-encoder scores
``mentions_per_call`` mentions per onnxruntime call; at 1 (default) a mention's scores depend only on its own candidates (dynamic
int8 scales activations per call), so re-running a note writes the same rows however the notes were batched. The
feature reranker embeds every text alone and its trees score each row alone, so it is batch-independent throughout.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..models.artifacts import ARTIFACTS_DIR
from ..models.reranker.calibration import CALIBRATION_FILE, NilCalibrator
from ..models.reranker.features import CandidateView
from ..models.reranker.inputs import MentionContext
from ..models.reranker.runtime import load_reranker_model
from ..models.reranker.scoring import rerank
from .candidate_generator import Candidate

log = logging.getLogger("clin_linker.reranking")

#: The shipped reranker (int8 ONNX + calibration.json), used when ``rerank`` is on and ``reranker_dir`` is "".
DEFAULT_RERANKER_DIR = ARTIFACTS_DIR / "reranker_context"

_SESSIONS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


def shared_reranker_model(model_dir: Path, threads: int = 0):
    """One reranker model (onnxruntime sessions, text-vector memo) per (model, threads) per process, shared by
    every pipeline: its memo only ever caches a text's own vector, so sharing it changes no result."""
    key = (str(Path(model_dir).resolve()), threads)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = load_reranker_model(model_dir, threads=threads or None)
        return _SESSIONS[key]


@dataclass(frozen=True)
class Linked:
    """A mention's outcome: candidates best first as (concept_key, score), the chosen concept (None = NIL)."""

    candidates: list[tuple[str, float]]
    score: float | None
    concept: str | None
    reranked: bool


def resolve_reranker_dir(reranker_dir: str) -> Path:
    """The cross-encoder ``rerank = true`` uses: ``reranker_dir``, or "" = the shipped one.

    Missing is an error naming the fix, never a silent fall-back to retrieval only: that would change the NIL
    rule (``nil_threshold`` -> ``threshold``) behind the user's back.
    """
    if reranker_dir:
        path = Path(reranker_dir).expanduser()
        if not (path / "artifact.json").exists():
            raise FileNotFoundError(f"clin_linker: reranker_dir {path} has no artifact.json; export one with "
                                    "`clin-linker model export-reranker`, or set rerank false")
        return path
    if not (DEFAULT_RERANKER_DIR / "artifact.json").exists():
        raise FileNotFoundError(
            f"clin_linker: rerank is true but this installation ships no reranker ({DEFAULT_RERANKER_DIR} is "
            "missing); set reranker_dir to one exported with `clin-linker model export-reranker` (and calibrated "
            "with `clin-linker model calibrate-reranker`), or set rerank false"
        )
    return DEFAULT_RERANKER_DIR


def chosen_reranker_dir(rerank: str | None, no_rerank: bool) -> Path | None:
    """The reranker a command uses: ``--rerank DIR``; else the shipped one when installed; None with ``--no-rerank``
    (or when nothing is installed and none was asked for: retrieval only, said on stderr)."""
    if no_rerank:
        if rerank:
            raise ValueError("--rerank DIR and --no-rerank contradict each other: pass one of them")
        return None
    if rerank is None and not (DEFAULT_RERANKER_DIR / "artifact.json").exists():
        log.warning("no reranker is installed (%s): retrieval only", DEFAULT_RERANKER_DIR)
        return None
    return resolve_reranker_dir(rerank or "")


def _no_domain(concept_key: str) -> str:
    return ""


class MentionReranker:
    """Cross-encoder + calibrated NIL for a linker component; holds the per-run result cache.

    ``domain_of``: a candidate's domain as the reranker reads it (the concept store's ``domain_id``); unknown: "".
    """

    def __init__(self, model_dir: Path, threads: int = 0, rerank_k: int = 5, nil_threshold: float = -1.0,
                 skip_exact: bool = False, mentions_per_call: int = 1, cache_size: int = 200_000,
                 domain_of: Callable[[str], str] = _no_domain):
        if rerank_k < 1:
            raise ValueError(f"clin_linker: rerank_k must be >= 1, got {rerank_k}")
        if mentions_per_call < 1:
            raise ValueError(f"clin_linker: rerank_mentions_per_call must be >= 1, got {mentions_per_call}")
        self.encoder = shared_reranker_model(model_dir, threads)
        calibration = Path(model_dir) / CALIBRATION_FILE
        if calibration.exists():
            self.calibrator = NilCalibrator.load(calibration)
        else:
            log.warning("reranker %s has no %s: NIL probability is the uncalibrated sigmoid of the logit",
                        model_dir, CALIBRATION_FILE)
            self.calibrator = NilCalibrator.uncalibrated()
        if nil_threshold >= 0:
            self.calibrator = NilCalibrator(self.calibrator.weights, self.calibrator.bias, nil_threshold,
                                            self.calibrator.features, self.calibrator.meta)
        self.rerank_k = rerank_k
        self.skip_exact = skip_exact
        self.mentions_per_call = mentions_per_call
        self.cache_size = cache_size
        self.domain_of = domain_of
        self._cache: dict[tuple, Linked] = {}

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def clear_caches(self) -> None:
        """Forget every cached outcome and memoised text vector (a cold start, as a fresh process has)."""
        self._cache.clear()
        clear = getattr(self.encoder, "clear_memo", None)
        if clear is not None:
            clear()

    @property
    def threshold(self) -> float:
        return self.calibrator.threshold

    def head_logits(self, contexts: Sequence[MentionContext], labels: Sequence[str],
                    candidates: Sequence[Sequence[Candidate]]) -> list:
        """Reranker logits of each mention's top ``rerank_k`` candidates, in retrieval order.

        Each candidate is read as its matched name, retrieval cosine, exact flag and domain, the shape the reranker
        was trained on. The NIL calibration (``pipeline.evaluation.nil``) fits on exactly these logits.
        """
        views = [[CandidateView(c.name or c.concept_key, c.score, c.exact, self.domain_of(c.concept_key))
                  for c in cands[: self.rerank_k]] for cands in candidates]
        return self.encoder.score_mentions(contexts, labels, views, groups_per_call=self.mentions_per_call)

    def link(self, contexts: Sequence[MentionContext], labels: Sequence[str],
             candidates: Sequence[Sequence[Candidate]], k: int) -> list[Linked]:
        """Outcome per mention; all uncached, non-decisive mentions of the call are scored together."""
        out: list[Linked | None] = [None] * len(contexts)
        todo: dict[tuple, list[int]] = {}
        for i, (ctx, label, cands) in enumerate(zip(contexts, labels, candidates)):
            key = (ctx.left.lower(), ctx.mention, ctx.right.lower(), label,
                   tuple(c.concept_key for c in cands[: self.rerank_k]))
            if not cands:
                out[i] = Linked([], None, None, False)
            elif self.skip_exact and cands[0].exact:
                out[i] = Linked([(c.concept_key, c.score) for c in cands[:k]], cands[0].score, cands[0].concept_key,
                                False)
            elif key in self._cache:
                out[i] = self._cache[key]
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            keys = list(todo)
            heads = [list(candidates[todo[key][0]][: self.rerank_k]) for key in keys]
            logits = self.head_logits([contexts[todo[key][0]] for key in keys], [key[3] for key in keys], heads)
            if len(self._cache) + len(keys) > self.cache_size:
                self._cache.clear()
            for key, head, lg in zip(keys, heads, logits):
                r = rerank(lg, [c.score for c in head], self.calibrator)
                ranked = [(head[j].concept_key, round(float(p), 4)) for j, p in zip(r.order, r.probabilities)][:k]
                best = r.best_probability
                linked = Linked(ranked, round(best, 4), ranked[0][0] if best >= self.threshold else None, True)
                self._cache[key] = linked
                for i in todo[key]:
                    out[i] = linked
        return out  # type: ignore[return-value]
