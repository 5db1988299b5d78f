"""The section -> concept id map behind NOTE_NLP.section_concept_id, resolved against the concept store in use.

Why: OMOP wants a section as a concept (LOINC document-section codes), but which ids exist depends on the user's
Athena vocabulary; we ship the codes (``sections.SECTION_LOINC``), not ids. A title maps to the real id of
``LOINC:<code>`` when the store holds that concept, else to 0 ("No matching concept"). Users can override any
title with a concept id or a concept key of their store (``--section-concepts FILE.json``), e.g. a site's own
section concepts.

Only real Athena ids (< 2,000,000,000) are ever written: local ids belong in source-concept fields alone (DESIGN §2).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ..ontologies.local_ids import LOCAL_ID_MIN
from ..ontologies.store import ConceptStore
from .sections import SECTION_LOINC, SECTION_TITLES

#: A user override: a concept id, or a concept key ("LOINC:10164-2") looked up in the store.
Override = int | str


def _resolve_key(store: ConceptStore, key: str) -> int:
    """The real id of ``key`` in the store, or 0 when absent or only a local id."""
    if key not in store:
        return 0
    concept_id = store[key].omop_concept_id
    return concept_id if concept_id < LOCAL_ID_MIN else 0


def resolve_section_concepts(store: ConceptStore, overrides: Mapping[str, Override] | None = None) -> dict[str, int]:
    """Title -> section_concept_id for every title the sectionizer produces.

    Defaults: ``LOINC:<SECTION_LOINC[title]>`` when the store holds it, else 0. ``overrides`` win; a concept key
    that the store lacks is an error (a typo would otherwise silently write 0 for a whole section).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(SECTION_TITLES))
    if unknown:
        raise ValueError(f"section concept map: unknown section title(s) {unknown}; "
                         f"known titles: {', '.join(SECTION_TITLES)}")
    resolved = {title: _resolve_key(store, f"LOINC:{SECTION_LOINC[title]}") if title in SECTION_LOINC else 0
                for title in SECTION_TITLES}
    for title, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"section concept map: {title!r} must map to a concept id or a concept key, "
                             f"got {type(value).__name__}")
        if isinstance(value, int):
            if not 0 <= value < LOCAL_ID_MIN:
                raise ValueError(f"section concept map: {title!r} -> {value} is not a real OMOP concept id "
                                 f"(0 <= id < {LOCAL_ID_MIN}); local ids may not appear in section_concept_id")
            resolved[title] = value
        else:
            concept_id = _resolve_key(store, value)
            if value not in store:
                raise ValueError(f"section concept map: {title!r} -> {value!r} is not in the concept store at "
                                 f"{store.directory}; load its vocabulary or give the concept id instead")
            if concept_id == 0:
                raise ValueError(f"section concept map: {title!r} -> {value!r} has only a local id in the store; "
                                 "section_concept_id takes real OMOP ids (load the Athena vocabulary that has it)")
            resolved[title] = concept_id
    return resolved


def read_section_map(path: str | Path) -> dict[str, Override]:
    """A JSON object ``{section title: concept id | concept key}`` (the ``--section-concepts`` file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"section concept map {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"section concept map {path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"section concept map {path}: expected a JSON object {{title: concept id or key}}")
    return data
