"""Everything the linker loads from an index directory, loaded once per process and shared.

spaCy may build several pipelines in one process (tests, Beam's per-thread DoFns); the index, the
encoder session and the name lookups are read-only, so one copy serves all of them.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..models.encoder_runtime import OnnxSentenceEncoder
from ..ontologies.index import NameIndex, encoder_dir_of, store_dir_of
from ..ontologies.store import ConceptStore
from .candidate_generator import CandidateGenerator
from .dictionary_matcher import DictionaryMatcher, name_lookup
from .labels import label_for_domain


@dataclass
class LinkerResources:
    index_dir: Path
    store: ConceptStore  # scispaCy's knowledge-base layer
    candidates: CandidateGenerator
    matcher: DictionaryMatcher
    encoder_id: str
    domains: dict[str, str]  # concept_key -> OMOP domain_id, what the reranker reads beside a candidate's name


#: Concept classes that are modifiers or context, not findings: HPO's clinical modifiers and the terms
#: outside Phenotypic abnormality ("Stable", "Distal", "Family history"). A note mentions them
#: constantly, so detecting them alone is noise; they stay linkable when a detector finds them.
UNDETECTED_CLASSES = frozenset({"Qualifier", "Observation"})

_CACHE: dict[tuple[str, int], LinkerResources] = {}
_LOCK = threading.Lock()


def resolve_index_dir(index_dir: str | Path | None) -> Path:
    """An explicit index directory, or the embedded default (built on first use)."""
    if index_dir:
        return Path(index_dir).expanduser().resolve()
    from ..ontologies.default_index import ensure_default_index

    return ensure_default_index()


def check_targets(targets: Sequence[str], store: ConceptStore) -> None:
    """Refuse target vocabularies the store does not hold, naming those it does: before any note is linked."""
    held = sorted({c.vocabulary_id for c in store.concepts()})
    missing = [t for t in targets if t not in held]
    if missing:
        raise ValueError(f"clin_linker: target vocabulary {', '.join(missing)} is not in the concept store at "
                         f"{store.directory}, which holds {', '.join(held)}; set targets to some of those, or "
                         "link with an index whose store has it (`clin-linker vocab build`, `clin-linker index build`)")


def load_resources(index_dir: str | Path | None, threads: int = 0) -> LinkerResources:
    directory = resolve_index_dir(index_dir)
    cache_key = (str(directory), threads)
    with _LOCK:
        if cache_key not in _CACHE:
            store = ConceptStore(store_dir_of(directory))
            index = NameIndex(directory)
            encoder = OnnxSentenceEncoder(encoder_dir_of(directory), threads=threads or None)
            lookup = name_lookup(zip(index.concept_keys, index.names))
            concepts = list(store.concepts())
            label_of = {c.concept_key: label_for_domain(c.domain_id) for c in concepts
                        if c.concept_class_id not in UNDETECTED_CLASSES}
            _CACHE[cache_key] = LinkerResources(
                index_dir=directory,
                store=store,
                candidates=CandidateGenerator(index, encoder, lookup),
                matcher=DictionaryMatcher(lookup, label_of),
                encoder_id=encoder.info.short_id,
                domains={c.concept_key: c.domain_id for c in concepts},
            )
        return _CACHE[cache_key]
