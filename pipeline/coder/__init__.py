"""Document coding: a note's ranked code list in one vocabulary, with the mentions behind each code.

Two coders share the candidate codes (:mod:`.candidates`): the zero-shot one (:mod:`.zero_shot`, retrieval scores
only) and the trained one (:mod:`.trained`, the site's model from ``clin-linker train coder``; the shipped default
was trained on the CodiEsp train notes). :func:`load_coder` picks one; ``clin-linker code``, ``clin-linker eval
coding`` and the run's NOTE_CODE table all call it, so what is scored is what is emitted.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Callable

from spacy.tokens import Doc

from ...models.artifacts import ARTIFACTS_DIR
from ...ontologies.icd10cm_specificity import VOCABULARY_ID as ICD10CM
from ...ontologies.store import ConceptStore
from .candidates import WINDOW_VOCABULARIES, CandidateCollector, specificity_of
from .evidence import DocumentCode, Evidence
from .trained import TrainedCoder
from .zero_shot import DEFAULT_EXCLUDED_FLAGS, ZeroShotCoder

#: The shipped coder model: ICD-10-CM, trained on the CodiEsp train notes (models/coder_codiesp/MODEL_CARD.md).
DEFAULT_CODER_DIR = ARTIFACTS_DIR / "coder_codiesp"
#: The shipped coder model of each vocabulary: ICD-10-PCS trained on the same notes' procedure codes
#: (models/coder_codiesp_pcs/MODEL_CARD.md).
SHIPPED_CODER_DIRS = {ICD10CM: DEFAULT_CODER_DIR, "ICD10PCS": ARTIFACTS_DIR / "coder_codiesp_pcs"}
#: Candidates read per mention: the linker must keep at least this many (``clin_linker`` ``k``).
CANDIDATES_PER_MENTION = 10

Coder = Callable[[Doc], list[DocumentCode]]

__all__ = ["CANDIDATES_PER_MENTION", "DEFAULT_CODER_DIR", "DEFAULT_EXCLUDED_FLAGS", "Coder", "DocumentCode",
           "Evidence", "build_coding_pipeline", "coding_reranker_dir", "excluded_flags", "load_coder"]


def load_coder(store: ConceptStore, vocabulary: str = ICD10CM, coder_dir: str | Path | None = None,
               zero_shot: bool = False, excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS,
               threads: int = 1) -> Coder:
    """The coder of ``vocabulary`` over the linker's ``store``.

    ``zero_shot``: no trained model. Otherwise ``coder_dir`` (None: the shipped one, :data:`SHIPPED_CODER_DIRS`).
    """
    collector = CandidateCollector(vocabulary, specificity_of(store.concepts(), vocabulary),
                                   CANDIDATES_PER_MENTION)
    if zero_shot:
        if coder_dir:
            raise ValueError("--zero-shot uses no coder model: drop --coder, or drop --zero-shot to use it")
        return ZeroShotCoder(collector, excluded_flags)
    if coder_dir is None:
        if vocabulary not in SHIPPED_CODER_DIRS:
            raise ValueError(f"there is no shipped coder model for {vocabulary} (only "
                             f"{', '.join(SHIPPED_CODER_DIRS)}): train one with `clin-linker train coder` and pass "
                             "--coder DIR, or pass --zero-shot")
        coder_dir = SHIPPED_CODER_DIRS[vocabulary]
    return TrainedCoder(collector, Path(coder_dir), excluded_flags, threads)


def excluded_flags(include_negated: bool = False) -> tuple[str, ...]:
    """The assertion flags whose mentions make no code: the default, less ``is_negated`` with ``include_negated``."""
    return tuple(f for f in DEFAULT_EXCLUDED_FLAGS if not (include_negated and f == "is_negated"))


def coding_reranker_dir(rerank: str | None, no_rerank: bool, coder_dir: str | Path | None = None,
                        zero_shot: bool = False, follow_coder: bool = True, vocabulary: str = ICD10CM) -> str | None:
    """``--rerank [DIR]`` / ``--no-rerank`` of a coding command as :func:`build_coding_pipeline` takes it.

    Neither given: the setting the coder model was trained with (``coder_dir``, None: the shipped one of
    ``vocabulary``; its ``artifact.json`` key ``reranker``: the shipped reranker when it names one, else retrieval
    alone), because a coder reads scores and ranks that reranking changes: the shipped coder, trained on retrieval,
    scores MAP 0.497 on retrieval and 0.460 on reranked candidates.
    The zero-shot coder and ``train coder`` (``follow_coder`` False) read retrieval alone unless asked.
    """
    import json

    from ..reranking import chosen_reranker_dir

    if rerank is None and not no_rerank:
        if zero_shot or not follow_coder:
            return None
        coder_dir = coder_dir or SHIPPED_CODER_DIRS.get(vocabulary)
        meta = Path(coder_dir) / "artifact.json" if coder_dir else None
        trained_with = json.loads(meta.read_text()).get("reranker") if meta and meta.exists() else None
        if not trained_with:
            return None
    chosen = chosen_reranker_dir(rerank, no_rerank)
    return None if chosen is None else str(chosen)


def build_coding_pipeline(vocabulary: str = ICD10CM, index_dir: str = "", threads: int = 0,
                          reranker_dir: str | None = None):
    """The shipped pipeline set up for coding: ``vocabulary`` as the linker's target (every mention's candidates
    are of it) and :data:`CANDIDATES_PER_MENTION` of them kept (and as many window candidates for
    :data:`.candidates.WINDOW_VOCABULARIES`).

    ``reranker_dir``: rerank all of them with that reranker ("" = the shipped one), so every candidate the coder
    reads carries a calibrated probability and the reranked rank; None: retrieval order and cosines.
    """
    from ..build import build_pipeline

    rerank = {"rerank": False} if reranker_dir is None else {"rerank": True, "reranker_dir": reranker_dir,
                                                              "rerank_k": CANDIDATES_PER_MENTION}
    window = CANDIDATES_PER_MENTION if vocabulary in WINDOW_VOCABULARIES else 0
    return build_pipeline(index_dir, ner_config={"threads": threads}, threads=threads, targets=[vocabulary],
                          k=CANDIDATES_PER_MENTION, window_k=window, **rerank)
