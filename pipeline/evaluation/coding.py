"""Document coding evaluation (``clin-linker eval coding``): the shipped pipeline codes whole notes, scored against
document-level gold codes (CodiEsp-D style; the scores are ``metrics.score_coding``).

The pipeline is the one the job runs (``build.build_pipeline``, run with ``nlp.pipe``), and each note's ranked list
is ``document_codes.document_codes``, the ranking ``clin-linker code`` will emit. Predictions outside the vocabulary
are the codes the linker's store does not hold for it; gold codes are compared after ``metrics.normalize_code``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from spacy.language import Language

from ..build import linker_of
from ..document_codes import DEFAULT_EXCLUDED_FLAGS, document_codes
from .metrics import normalize_code, score_coding


def read_coded_documents(path: str | Path, vocabulary: str, limit: int | None = None) -> list[dict]:
    """The documents of a coding file: one JSON object per line, ``{"doc_id", "text", "<vocabulary lower>": [...]}``.

    Raises with the file and line of the first document that lacks a field or whose codes are not a list.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"coding file {path} does not exist")
    field = vocabulary.lower()
    docs: list[dict] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if limit is not None and len(docs) >= limit:
            break
        doc = json.loads(line)
        missing = [k for k in ("doc_id", "text", field) if k not in doc]
        if missing:
            raise ValueError(f"{path}, line {number}: field(s) {', '.join(missing)} missing; each line needs doc_id, "
                             f"text and {field!r} (the gold {vocabulary} codes; --vocabulary names another)")
        if not isinstance(doc[field], list) or not isinstance(doc["text"], str):
            raise ValueError(f"{path}, line {number}: {field!r} must be a list of codes and 'text' a string")
        docs.append(doc)
    return docs


def vocabulary_codes(nlp: Language, vocabulary: str) -> set[str]:
    """The normalised codes the pipeline's store holds for ``vocabulary``: the valid predictions."""
    codes = {normalize_code(c.concept_code) for c in linker_of(nlp).resources.store.concepts()
             if c.vocabulary_id == vocabulary}
    if not codes:
        raise ValueError(f"the linker's store has no {vocabulary} concept: pass a --vocabulary it holds "
                         "(the default store: ICD10CM, HPO)")
    return codes


def evaluate_coding(docs: list[dict], nlp: Language, vocabulary: str = "ICD10CM",
                    excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS) -> dict:
    """``metrics.score_coding`` of the pipeline's ranked code lists on ``docs``, plus ``docs_per_s`` (pipeline and
    ranking, model loading excluded)."""
    valid = vocabulary_codes(nlp, vocabulary)
    excluded = tuple(excluded_flags)
    started = time.perf_counter()
    predicted = [[c.code for c in document_codes(doc, vocabulary, excluded)]
                 for doc in nlp.pipe(d["text"] for d in docs)]
    seconds = time.perf_counter() - started
    field = vocabulary.lower()
    report = score_coding([(d[field], p) for d, p in zip(docs, predicted)], valid)
    report["docs_per_s"] = len(docs) / seconds if seconds > 0 else 0.0
    return report
