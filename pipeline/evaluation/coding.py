"""Document coding evaluation (``clin-linker eval coding``): the shipped pipeline codes whole notes, scored against
document-level gold codes (CodiEsp-D style; the scores are ``metrics.score_coding``).

The pipeline is the one ``clin-linker code`` runs (``coder.build_coding_pipeline``, run with ``nlp.pipe``), and each
note's ranked list is the coder's (``coder.load_coder``), the list ``clin-linker code`` emits. MAP reads the whole
ranked list; precision/recall/F1 read the accepted codes (the ones ``clin-linker code`` writes by default).
Predictions outside the vocabulary are the codes the linker's store does not hold for it; gold codes are compared
after ``metrics.normalize_code``, a non-billable gold code also matched by a predicted code under it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from spacy.language import Language

from ..build import linker_of
from ..coder import Coder
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


def is_billable_class(concept_class_id: str | None) -> bool:
    """Whether a concept of this class is a code a coder writes: Athena's ICD-10-CM "3-char nonbill code" and the
    ICD-10-PCS "ICD10PCS Hierarchy" prefixes (fewer than 7 characters) are not; every other class is."""
    return not any(word in (concept_class_id or "") for word in ("nonbill", "Hierarchy"))


def vocabulary_codes(nlp: Language, vocabulary: str) -> tuple[set[str], set[str]]:
    """The normalised codes the pipeline's store holds for ``vocabulary`` (the valid predictions) and those of them
    that are billable (:func:`is_billable_class`). A gold code that is not billable is matched by a predicted code
    under it (``metrics.score_coding``): CodiEsp-P's 4-character ICD-10-PCS codes by the 7-character codes they begin.
    """
    concepts = [c for c in linker_of(nlp).resources.store.concepts() if c.vocabulary_id == vocabulary]
    if not concepts:
        raise ValueError(f"the linker's store has no {vocabulary} concept: pass a --vocabulary it holds "
                         "(the default store: ICD10CM, ICD10PCS, SNOMED, HPO)")
    codes = {normalize_code(c.concept_code) for c in concepts}
    billable = {normalize_code(c.concept_code) for c in concepts if is_billable_class(c.concept_class_id)}
    return codes, billable


def evaluate_coding(docs: list[dict], nlp: Language, coder: Coder, vocabulary: str = "ICD10CM") -> dict:
    """``metrics.score_coding`` of ``coder``'s lists on ``docs``: MAP (and category MAP) over the whole ranked list,
    precision/recall/F1 over the accepted codes, plus ``docs_per_s`` (pipeline and coder, model loading excluded)."""
    valid, billable = vocabulary_codes(nlp, vocabulary)
    started = time.perf_counter()
    ranked = [coder(doc) for doc in nlp.pipe(d["text"] for d in docs)]
    seconds = time.perf_counter() - started
    field = vocabulary.lower()
    gold = [d[field] for d in docs]
    whole = score_coding([(g, [c.code for c in codes]) for g, codes in zip(gold, ranked)], valid, billable)
    accepted = score_coding([(g, [c.code for c in codes if c.accepted]) for g, codes in zip(gold, ranked)], valid,
                            billable)
    return {"map": whole["map"], "micro": accepted["micro"],
            "cat3": {"map": whole["cat3"]["map"], **{k: accepted["cat3"][k] for k in ("precision", "recall", "f1")}},
            "n_docs": whole["n_docs"], "docs_per_s": len(docs) / seconds if seconds > 0 else 0.0}
