"""The normalized concept store: one directory of Parquet tables + a manifest (DESIGN §2).

Tables: ``concepts``, ``names``, ``maps_to``, ``xrefs``. :func:`build_store` merges the parts that
loaders produce, assigns local ids and writes the directory; :class:`ConceptStore` reads it back and is
the linker's knowledge base (lookups by concept key).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .local_ids import LOCAL_ID_MIN, assign_local_ids
from .records import NAME_TYPES, Concept, VocabularyPart

log = logging.getLogger(__name__)

STORE_FORMAT = 1
MANIFEST = "manifest.json"

_CONCEPT_SCHEMA = pa.schema(
    [
        ("concept_key", pa.string()),
        ("vocabulary_id", pa.string()),
        ("concept_code", pa.string()),
        ("concept_name", pa.string()),
        ("domain_id", pa.string()),
        ("concept_class_id", pa.string()),
        ("standard_concept", pa.string()),
        ("omop_concept_id", pa.int64()),
        ("valid_start_date", pa.date32()),
        ("valid_end_date", pa.date32()),
        ("invalid_reason", pa.string()),
        ("attributes", pa.string()),
    ]
)


class StoreError(ValueError):
    """A store cannot be built or read; the message says which input and what to do."""


def _dedupe_concepts(parts: list[VocabularyPart]) -> dict[str, Concept]:
    """Every concept once; a fallback part's concept only where no other part defines it (``parts`` in
    :func:`build_store`'s order: fallback parts last)."""
    concepts: dict[str, Concept] = {}
    for part in parts:
        for concept in part.concepts:
            key = concept.concept_key
            if part.fallback and key in concepts:
                continue
            if key in concepts:
                raise StoreError(
                    f"concept {key} is defined twice (second time by {part.source}); "
                    "load each vocabulary once or give the custom vocabulary its own vocabulary_id"
                )
            concepts[key] = concept
    return concepts


def _assign_ids(concepts: dict[str, Concept]) -> dict[str, int]:
    real = {k: c.omop_concept_id for k, c in concepts.items() if c.omop_concept_id is not None}
    dup = [i for i, n in Counter(real.values()).items() if n > 1]
    if dup:
        raise StoreError(f"omop_concept_id {dup[0]} is used by more than one concept in the inputs")
    missing = [(c.vocabulary_id, c.concept_code) for c in concepts.values() if c.omop_concept_id is None]
    local = assign_local_ids(missing, taken=real.values())
    ids = dict(real)
    for key, concept in concepts.items():
        if concept.omop_concept_id is None:
            ids[key] = local[(concept.vocabulary_id, concept.concept_code)]
    return ids


def build_store(parts: Iterable[VocabularyPart], out_dir: Path) -> dict:
    """Merge vocabulary parts into a store directory and return its manifest.

    Names are de-duplicated per concept (case-insensitively, keeping the first name_type seen, loaders put
    preferred names first); maps_to and xrefs rows whose source concept is absent are dropped with a warning.
    """
    parts = sorted(parts, key=lambda p: p.fallback)  # stable: the user's parts first, in their order
    if not parts:
        raise StoreError("no vocabulary given: pass at least one source to build a concept store")
    concepts = _dedupe_concepts(parts)
    ids = _assign_ids(concepts)

    seen: set[tuple[str, str]] = set()
    names: list[tuple[str, str, str]] = []
    # a fallback part's names come last, and where another part defines the concept they are only synonyms
    defined = {c.concept_key for p in parts if not p.fallback for c in p.concepts}
    for part in parts:
        for n in part.names:
            if n.name_type not in NAME_TYPES:
                raise StoreError(f"{part.source}: name_type {n.name_type!r} is not one of {NAME_TYPES}")
            if n.concept_key not in concepts:
                raise StoreError(f"{part.source}: name {n.name!r} refers to unknown concept {n.concept_key}")
            text = " ".join(n.name.split())
            if not text or (n.concept_key, text.lower()) in seen:
                continue
            seen.add((n.concept_key, text.lower()))
            overridden = part.fallback and n.name_type == "preferred" and n.concept_key in defined
            names.append((n.concept_key, text, "synonym" if overridden else n.name_type))

    def _known_source(rows, what):
        kept = [r for r in rows if r[0] in concepts]
        if len(kept) < len(rows):
            log.warning("dropped %d %s rows whose source concept is not in the store", len(rows) - len(kept), what)
        return kept

    maps_to = _known_source(sorted({m for p in parts for m in p.maps_to}), "maps_to")
    xrefs = _known_source(sorted({(x.concept_key, x.xref_key, x.relation) for p in parts for x in p.xrefs}), "xref")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(concepts.values(), key=lambda c: c.concept_key)
    concept_table = pa.Table.from_pylist(
        [
            {
                "concept_key": c.concept_key,
                "vocabulary_id": c.vocabulary_id,
                "concept_code": c.concept_code,
                "concept_name": c.concept_name,
                "domain_id": c.domain_id,
                "concept_class_id": c.concept_class_id,
                "standard_concept": c.standard_concept,
                "omop_concept_id": ids[c.concept_key],
                "valid_start_date": c.valid_start_date,
                "valid_end_date": c.valid_end_date,
                "invalid_reason": c.invalid_reason,
                "attributes": json.dumps(c.attributes, sort_keys=True) if c.attributes else None,
            }
            for c in ordered
        ],
        schema=_CONCEPT_SCHEMA,
    )
    pq.write_table(concept_table, out_dir / "concepts.parquet")
    pq.write_table(pa.table({k: [r[i] for r in names] for i, k in enumerate(("concept_key", "name", "name_type"))}),
                   out_dir / "names.parquet")
    pq.write_table(pa.table({"concept_key": [m[0] for m in maps_to], "standard_concept_key": [m[1] for m in maps_to]},
                            schema=pa.schema([("concept_key", pa.string()), ("standard_concept_key", pa.string())])),
                   out_dir / "maps_to.parquet")
    pq.write_table(pa.table({"concept_key": [x[0] for x in xrefs], "xref_key": [x[1] for x in xrefs],
                             "relation": [x[2] for x in xrefs]},
                            schema=pa.schema([("concept_key", pa.string()), ("xref_key", pa.string()),
                                              ("relation", pa.string())])),
                   out_dir / "xrefs.parquet")

    digest = hashlib.sha256()
    for name in ("concepts.parquet", "names.parquet", "maps_to.parquet", "xrefs.parquet"):
        digest.update(_content_hash(out_dir / name).encode())
    manifest = {
        "format": STORE_FORMAT,
        "store_version": digest.hexdigest()[:16],
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vocabularies": [
            {"vocabulary_id": p.vocabulary_id, "version": p.version, "source": p.source,
             "concepts": len(p.concepts), "names": len(p.names)}
            for p in parts
        ],
        "counts": {"concepts": len(ordered), "names": len(names), "maps_to": len(maps_to), "xrefs": len(xrefs),
                   "local_ids": sum(1 for i in ids.values() if i >= LOCAL_ID_MIN)},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _content_hash(path: Path) -> str:
    """Hash of a table's rows (not the file bytes, which carry writer metadata)."""
    table = pq.read_table(path)
    h = hashlib.sha256()
    for batch in table.to_batches():
        for column in batch.columns:
            h.update(str(column.to_pylist()).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class StoredConcept:
    """A concept as the knowledge base serves it."""

    concept_key: str
    vocabulary_id: str
    concept_code: str
    concept_name: str
    domain_id: str
    concept_class_id: str
    standard_concept: str | None
    omop_concept_id: int
    valid_start_date: dt.date
    valid_end_date: dt.date
    invalid_reason: str | None


class ConceptStore:
    """Read-only view of a store directory: the linker's knowledge base."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        if not manifest_path.exists():
            raise StoreError(f"{self.directory} is not a concept store (no {MANIFEST}); "
                             "build one with `clin-linker vocab build`")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != STORE_FORMAT:
            raise StoreError(f"{self.directory}: store format {self.manifest.get('format')} is not "
                             f"{STORE_FORMAT}; rebuild it with this version of clin-linker")
        rows = pq.read_table(self.directory / "concepts.parquet").to_pylist()
        self._concepts = {
            r["concept_key"]: StoredConcept(**{k: r[k] for k in StoredConcept.__dataclass_fields__}) for r in rows
        }
        maps = pq.read_table(self.directory / "maps_to.parquet").to_pylist()
        self._maps_to: dict[str, list[str]] = {}
        for r in maps:
            self._maps_to.setdefault(r["concept_key"], []).append(r["standard_concept_key"])

    @property
    def version(self) -> str:
        return self.manifest["store_version"]

    def __len__(self) -> int:
        return len(self._concepts)

    def __contains__(self, key: str) -> bool:
        return key in self._concepts

    def __getitem__(self, key: str) -> StoredConcept:
        try:
            return self._concepts[key]
        except KeyError:
            raise KeyError(f"concept {key!r} is not in the store at {self.directory}") from None

    def concepts(self) -> Iterable[StoredConcept]:
        return self._concepts.values()

    def names(self) -> pa.Table:
        """All names (concept_key, name, name_type); read on demand, the index build needs them once."""
        return pq.read_table(self.directory / "names.parquet")

    def maps_to(self, key: str) -> list[str]:
        """Standard concept keys this concept "Maps to" (Athena), in the store."""
        return self._maps_to.get(key, [])

    def standard_concept(self, key: str) -> StoredConcept | None:
        """The OMOP standard concept ``key`` stands for, or None: the one "Maps to" rule of the project.

        A concept that is itself standard with a real Athena id stands for itself; otherwise the first
        "Maps to" target with a real id. Local ids (>= 2e9) never count as standard (CDM rule).
        """
        concept = self._concepts.get(key)
        if concept is None:
            return None
        if concept.standard_concept == "S" and concept.omop_concept_id < LOCAL_ID_MIN:
            return concept
        for target in self.maps_to(key):
            t = self._concepts.get(target)
            if t is not None and t.omop_concept_id < LOCAL_ID_MIN:
                return t
        return None

    def standard_concept_id(self, key: str) -> int:
        """The id of :meth:`standard_concept`, or 0 ("No matching concept") when there is none."""
        standard = self.standard_concept(key)
        return standard.omop_concept_id if standard else 0
