"""Coded spans -> OMOP CDM v5.4 rows (NOTE_NLP, and CONCEPT rows for local ids): the one place where
a linked mention becomes a database row (DESIGN §2 "NOTE_NLP row").
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from importlib.metadata import version

from spacy.tokens import Doc, Span

from ..ontologies.local_ids import LOCAL_ID_MIN
from ..ontologies.store import ConceptStore
from .section_concepts import resolve_section_concepts
from .sections import section_concept_id

MAX_TEXT = 250  # lexical_variant, snippet and term_modifiers are varchar(250) in CDM v5.4
#: Athena's "No matching concept": written so that concept id 0 joins CONCEPT too.
NO_MATCHING_CONCEPT = {
    "concept_id": 0, "concept_name": "No matching concept", "domain_id": "Metadata", "vocabulary_id": "None",
    "concept_class_id": "Undefined", "standard_concept": None, "concept_code": "No matching concept",
    "valid_start_date": dt.date(1970, 1, 1), "valid_end_date": dt.date(2099, 12, 31), "invalid_reason": None,
}


def nlp_system(model_ids: str) -> str:
    """``clin-linker <version> <model ids>``, cut to NOTE_NLP.nlp_system's 250 characters."""
    return f"clin-linker {version('clin-linker')} {model_ids}"[:MAX_TEXT]


def note_nlp_id(note_id: int, start: int, end: int, concept_key: str | None, system: str) -> int:
    """Deterministic 63-bit id: a re-run of the same system on the same note upserts, never duplicates."""
    text = f"{note_id}\x1f{start}\x1f{end}\x1f{concept_key or 'NIL'}\x1f{system}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") & (2**63 - 1)


def _snippet(span: Span) -> str:
    """The sentence around the mention when it fits in 250 characters, else a centred character window."""
    doc = span.doc
    if doc.has_annotation("SENT_START"):
        sent = span.sent
        if len(sent.text) <= MAX_TEXT:
            return sent.text
    half = max(0, (MAX_TEXT - len(span.text)) // 2)
    start = max(0, span.start_char - half)
    return " ".join(doc.text[start : start + MAX_TEXT].split())[:MAX_TEXT]


def _term_exists(span: Span) -> str:
    asserted = not (span._.is_negated or span._.is_family or span._.is_hypothetical or span._.is_uncertain)
    return "Y" if asserted else "N"


def term_modifiers(span: Span, concept_key: str | None) -> str:
    parts = [
        f"negated={str(span._.is_negated).lower()}",
        f"subject={'family' if span._.is_family else 'patient'}",
        f"conditional={str(span._.is_hypothetical).lower()}",
        f"uncertain={str(span._.is_uncertain).lower()}",
        f"historical={str(span._.is_historical).lower()}",
        f"code={concept_key or 'NIL'}",
        f"score={span._.score:.2f}" if span._.score is not None else "score=",
        f"label={span.label_}",
        f"section={span._.section or 'none'}",
    ]
    return ",".join(parts)[:MAX_TEXT]


def note_nlp_rows(doc: Doc, note_id: int, store: ConceptStore, system: str, run_at: dt.datetime,
                  section_concepts: Mapping[str, int] | None = None) -> list[dict]:
    """One NOTE_NLP row per linked (or NIL) mention of ``doc``.

    ``note_nlp_source_concept_id`` is the linked concept's id (local ids allowed only here);
    ``note_nlp_concept_id`` its standard concept via Maps to, else 0. NIL mentions keep both at 0.
    ``section_concepts`` (title -> id) defaults to the LOINC section concepts the store holds (0 without LOINC);
    the Beam job resolves it once per run instead.
    """
    if section_concepts is None:
        section_concepts = resolve_section_concepts(store)
    rows = []
    for span in doc.ents:
        if span._.candidates is None:
            continue
        key = span._.concept
        source_id = store[key].omop_concept_id if key else 0
        rows.append(
            {
                "note_nlp_id": note_nlp_id(note_id, span.start_char, span.end_char, key, system),
                "note_id": note_id,
                "section_concept_id": section_concept_id(span._.section, section_concepts),
                "snippet": _snippet(span),
                "offset": str(span.start_char),
                "lexical_variant": span.text[:MAX_TEXT],
                "note_nlp_concept_id": store.standard_concept_id(key) if key else 0,
                "note_nlp_source_concept_id": source_id,
                "nlp_system": system,
                "nlp_date": run_at.date(),
                "nlp_datetime": run_at,
                "term_exists": _term_exists(span),
                "term_temporal": "past" if span._.is_historical else "present",
                "term_modifiers": term_modifiers(span, key),
            }
        )
    return rows


def concept_rows(concept_ids: Iterable[int], store: ConceptStore) -> list[dict]:
    """CONCEPT rows for the local ids (>= 2e9) among ``concept_ids`` (+ id 0), so every written id joins."""
    wanted = {i for i in concept_ids if i >= LOCAL_ID_MIN or i == 0}
    rows = [dict(NO_MATCHING_CONCEPT)] if 0 in wanted else []
    for concept in store.concepts():
        if concept.omop_concept_id in wanted and concept.omop_concept_id >= LOCAL_ID_MIN:
            rows.append(
                {
                    "concept_id": concept.omop_concept_id,
                    "concept_name": concept.concept_name[:255],
                    "domain_id": concept.domain_id,
                    "vocabulary_id": concept.vocabulary_id,
                    "concept_class_id": concept.concept_class_id,
                    "standard_concept": None,  # local concepts are never standard in our output
                    "concept_code": concept.concept_code,
                    "valid_start_date": concept.valid_start_date,
                    "valid_end_date": concept.valid_end_date,
                    "invalid_reason": concept.invalid_reason,
                }
            )
    return rows
