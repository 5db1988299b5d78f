"""Coded spans -> OMOP CDM v5.4 rows: the one place where a linked mention becomes a database row (DESIGN §2
"NOTE_NLP row"): staged NOTE_NLP rows, derived clinical event rows (``--derive-clinical-tables``; from the mentions,
or for the coded vocabulary from the note's document codes) and the CONCEPT rows for local ids. The rules they share
live here once: :func:`stable_id` (every row id), :func:`assertion` (term_exists / term_temporal, and so which
mentions become events) and the standard concept (:meth:`ConceptStore.standard_concept`). Columns come from
:mod:`clin_linker.schemas.tables`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from typing import TYPE_CHECKING

from spacy.tokens import Doc, Span

from ..ontologies.local_ids import LOCAL_ID_MIN
from ..ontologies.store import ConceptStore
from ..schemas.tables import EVENT_TABLES
from .clinical_events import NLP_TYPE_CONCEPT_ID
from .section_concepts import resolve_section_concepts
from .sections import section_concept_id

if TYPE_CHECKING:  # type hints only: importing pipeline.coder loads the coder's run time
    from .coder.evidence import DocumentCode

MAX_TEXT = 250  # lexical_variant, snippet and term_modifiers are varchar(250) in CDM v5.4
SOURCE_VALUE_MAX = 50  # *_source_value are varchar(50) in CDM v5.4
#: OMOP domain_id -> the table its affirmed, present mentions become.
EVENT_TABLE_OF_DOMAIN = {table.domain_id: table for table in EVENT_TABLES}
#: Athena's "No matching concept": written so that concept id 0 joins CONCEPT too.
NO_MATCHING_CONCEPT = {
    "concept_id": 0, "concept_name": "No matching concept", "domain_id": "Metadata", "vocabulary_id": "None",
    "concept_class_id": "Undefined", "standard_concept": None, "concept_code": "No matching concept",
    "valid_start_date": dt.date(1970, 1, 1), "valid_end_date": dt.date(2099, 12, 31), "invalid_reason": None,
}


def nlp_system(model_ids: str) -> str:
    """``clin-linker <version> <model ids>``, cut to NOTE_NLP.nlp_system's 250 characters."""
    return f"clin-linker {version('clin-linker')} {model_ids}"[:MAX_TEXT]


def stable_id(*parts: object) -> int:
    """Deterministic 63-bit id of ``parts`` (their ``str`` joined by U+001F, SHA-256, first 8 bytes): a re-run
    on the same input gives the same id, so writes upsert instead of duplicating."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") & (2**63 - 1)


def note_nlp_id(note_id: int, start: int, end: int, concept_key: str | None, system: str) -> int:
    """The NOTE_NLP id of one mention: the same system on the same note span and concept gives the same row."""
    return stable_id(note_id, start, end, concept_key or "NIL", system)


def event_id(table: str, person_id: int, concept_id: int, source_concept_id: int, day: dt.date) -> int:
    """The id of one person + concept + date event: mentions repeated in a note, in several notes or in a re-run
    land on the same row. With no standard concept (id 0) the source concept keeps unmapped codes apart."""
    concept = str(concept_id) if concept_id else f"source:{source_concept_id}"
    return stable_id(table, person_id, concept, day.isoformat())


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


def assertion(span: Span) -> tuple[str, str]:
    """``(term_exists, term_temporal)`` of a mention, the one assertion rule (DESIGN §2): "N" when negated,
    uncertain, hypothetical or about a relative, else "Y"; "past" when historical, else "present"."""
    asserted = not (span._.is_negated or span._.is_family or span._.is_hypothetical or span._.is_uncertain)
    return ("Y" if asserted else "N"), ("past" if span._.is_historical else "present")


def is_affirmed_present(span: Span) -> bool:
    """Whether the note asserts this mention of the patient, now: the mentions that may become events."""
    return assertion(span) == ("Y", "present")


def term_modifiers(span: Span, concept_key: str | None) -> str:
    """The mention's context, code, score, label and section (and a functioning statement's assistance, device and
    distance) as ``key=value,...`` text, for people reading NOTE_NLP (programs read the staged columns instead)."""
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
    if span._.functioning:  # a functioning statement: how much help, with what, how far
        parts += [f"{key}={value or 'none'}" for key, value in span._.functioning.items()]
    return ",".join(parts)[:MAX_TEXT]


def note_nlp_rows(doc: Doc, note_id: int, store: ConceptStore, system: str, run_at: dt.datetime,
                  section_concepts: Mapping[str, int] | None = None) -> list[dict]:
    """One staged NOTE_NLP row (columns of :data:`~clin_linker.schemas.tables.STAGED_NOTE_NLP`) per linked (or
    NIL) mention of ``doc``: the NOTE_NLP columns plus the mention's label, concept, score, flags, section, character
    span and top candidates.

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
        linked = store[key] if key else None
        term_exists, term_temporal = assertion(span)
        rows.append(
            {
                "note_nlp_id": note_nlp_id(note_id, span.start_char, span.end_char, key, system),
                "note_id": note_id,
                "section_concept_id": section_concept_id(span._.section, section_concepts),
                "snippet": _snippet(span),
                "offset": str(span.start_char),
                "lexical_variant": span.text[:MAX_TEXT],
                "note_nlp_concept_id": store.standard_concept_id(key) if key else 0,
                "note_nlp_source_concept_id": linked.omop_concept_id if linked else 0,
                "nlp_system": system,
                "nlp_date": run_at.date(),
                "nlp_datetime": run_at,
                "term_exists": term_exists,
                "term_temporal": term_temporal,
                "term_modifiers": term_modifiers(span, key),
                "label": span.label_,
                "concept_key": key,
                "vocabulary_id": linked.vocabulary_id if linked else None,
                "score": span._.score,
                "negated": bool(span._.is_negated),
                "family": bool(span._.is_family),
                "hypothetical": bool(span._.is_hypothetical),
                "uncertain": bool(span._.is_uncertain),
                "historical": bool(span._.is_historical),
                "section": span._.section,
                "start_char": span.start_char,
                "end_char": span.end_char,
                "candidates": candidates_json(span._.candidates, store),
            }
        )
    return rows


def candidates_json(candidates: Iterable[tuple[str, float]], store: ConceptStore) -> str:
    """A mention's candidates, best first, as compact JSON ``[{concept_key, concept_name, score}]``: with their
    names, because a reader of the output (the review report) has no concept store, and the CONCEPT table holds
    only the concepts rows point at."""
    return json.dumps([{"concept_key": key, "concept_name": store[key].concept_name if key in store else "",
                        "score": round(float(score), 4)} for key, score in candidates],
                      separators=(",", ":"), ensure_ascii=False)


def event_rows(doc: Doc, note_id: int, person_id: int, day: dt.date, store: ConceptStore, system: str,
               coded_vocabulary: str | None = None) -> list[dict]:
    """Derived event candidates (columns of :data:`~clin_linker.schemas.tables.STAGED_EVENT`) for the affirmed,
    present, linked mentions of ``doc`` (see :mod:`.clinical_events` for the rules).

    The domain of the standard concept routes the event, else the linked concept's own domain (then the event
    has concept id 0 and the linked code as its source). Duplicates (same event id) are kept here; the sink
    keeps one row per id across notes and runs. ``coded_vocabulary``: mentions linked into it make no event here,
    because the note's document coder decides that vocabulary's events (:func:`code_event_rows`).
    """
    rows = []
    for span in doc.ents:
        key = span._.concept
        if key is None or key not in store or not is_affirmed_present(span):
            continue
        if coded_vocabulary is not None and store[key].vocabulary_id == coded_vocabulary:
            continue
        row = _event_row(key, note_id, person_id, day, store, system)
        if row is not None:
            rows.append(row)
    return rows


def code_event_rows(codes: Iterable[DocumentCode], note_id: int, person_id: int, day: dt.date, store: ConceptStore,
                    system: str) -> list[dict]:
    """Derived event candidates from a note's document codes (``pipeline.coder``): one per accepted code, routed
    and identified as :func:`event_rows` routes a mention linked to that code.

    Why the coder and not the mentions: the accepted list is the note's code list (what ``clin-linker code``
    writes and ``eval coding`` scores), so the derived rows agree with it. Its assertion rule is the coder's, not
    :func:`is_affirmed_present`: evidence it excludes (negated, family, hypothetical by default) makes no code,
    historical evidence does (chronic conditions are coded), dated the note's day like every derived event.
    """
    rows = []
    for code in codes:
        if code.accepted:
            row = _event_row(code.concept_key, note_id, person_id, day, store, system)
            if row is not None:
                rows.append(row)
    return rows


def _event_row(key: str, note_id: int, person_id: int, day: dt.date, store: ConceptStore, system: str) -> dict | None:
    """The event candidate of concept ``key`` in one note (None when its domain has no event table)."""
    linked = store[key]
    standard = store.standard_concept(key)
    target = EVENT_TABLE_OF_DOMAIN.get(standard.domain_id if standard else linked.domain_id)
    if target is None:
        return None
    concept_id = standard.omop_concept_id if standard else 0
    return {
        "event_table": target.name,
        "event_id": event_id(target.name, person_id, concept_id, linked.omop_concept_id, day),
        "person_id": person_id,
        "concept_id": concept_id,
        "start_date": day,
        "type_concept_id": NLP_TYPE_CONCEPT_ID,
        "source_value": linked.concept_code[:SOURCE_VALUE_MAX],
        "source_concept_id": linked.omop_concept_id,
        "note_id": note_id,
        "nlp_system": system,
    }


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
