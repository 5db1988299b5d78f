"""SNOMED CT Global Patient Set (GPS) in the default store (source kind ``snomed-gps``).

Why: OMOP's standard vocabulary for conditions and procedures is SNOMED, but the full SNOMED CT needs the user's
licence. The GPS, about 26,000 ids with their fully specified names, is published by SNOMED International under
CC BY 4.0, so a converted copy ships as package data and ``--target SNOMED`` gives SNOMED codes out of the box.

- concepts: the GPS ids, vocabulary ``SNOMED``; domain, class and standard flag from the FSN's semantic tag, the
  same map the RF2 loader uses (:func:`.snomed_rf2.tag_domain`: disorder/finding -> Condition, procedure and
  regime/therapy -> Procedure, substance/product -> Drug (non-standard: RxNorm is), observable entity ->
  Measurement, body structure -> Spec Anatomic Site, the rest -> Observation);
- names: the FSN without its tag (preferred: the GPS has no preferred terms or synonyms), plus names joined only
  through exact-match cross-references: the Mondo Disease Ontology label of every MONDO concept that is a
  ``skos:exactMatch`` of the SNOMED id (converted in), and the names of every HPO term loaded before this source
  whose ``xref`` names the SNOMED id;
- a user's SNOMED from an Athena export or an RF2 release replaces a GPS concept with the same code (real
  concept_id, standard flag, concept_name): the part is a fallback (:attr:`.records.VocabularyPart.fallback`);
  the GPS names of that code stay as extra synonyms.

Package data: :func:`convert_gps` (``clin-linker vocab convert-gps``) writes our own Parquet layout from the GPS
table (concept id, FSN) and the Mondo exact matches.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import require_file, source_error
from .records import Concept, Name, VocabularyPart, concept_key
from .snomed_rf2 import VOCABULARY_ID, split_fsn, tag_domain
from .tsv import read_tsv

PACKAGED_GPS = Path(__file__).parent / "data" / "snomed_gps_2020.parquet"
FORMAT = 1
_METADATA_KEY = b"clin_linker.snomed_gps"
_SCHEMA = pa.schema([("code", pa.string()), ("fsn", pa.string()), ("mondo_labels", pa.list_(pa.string()))])
ATTRIBUTION = "SNOMED CT Global Patient Set, (c) SNOMED International, CC BY 4.0; Mondo Disease Ontology, CC BY 4.0"
#: Names of an HPO term that travel to the SNOMED concept its xref names.
_HPO_NAME_TYPES = {"preferred": "synonym", "synonym": "synonym", "layperson": "layperson"}


def convert_gps(gps_tsv: Path, mondo_tsv: Path, out_path: Path, *, version: str) -> dict[str, int]:
    """Write the package-data Parquet file from the GPS table (``concept_id`` ``SNOMEDCT:…``, ``fsn``) and the Mondo
    cross-reference table (``concept_id``, ``label``, ``xref_id``, ``predicate``); returns counts."""
    fix_gps = "give the GPS table with columns concept_id (SNOMEDCT:<id>) and fsn"
    fsn: dict[str, str] = {}
    for line, row in read_tsv(require_file(Path(gps_tsv), "SNOMED GPS table"), ("concept_id", "fsn"), fix_gps):
        prefix, _, code = row["concept_id"].partition(":")
        if prefix != "SNOMEDCT" or not code.isdigit() or not row["fsn"].strip():
            raise source_error(Path(gps_tsv), f"concept_id {row['concept_id']!r} / fsn is not a SNOMED id with its "
                               "FSN", fix_gps, line=line)
        fsn[code] = row["fsn"].strip()
    labels: dict[str, list[str]] = defaultdict(list)
    for _, row in read_tsv(require_file(Path(mondo_tsv), "Mondo cross-reference table"),
                           ("concept_id", "label", "xref_id", "predicate"),
                           "give Mondo's SSSOM exact matches flattened to concept_id, label, xref_id, predicate"):
        prefix, _, code = row["xref_id"].partition(":")
        label = row["label"].strip()
        if prefix == "SNOMEDCT" and row["predicate"] == "skos:exactMatch" and code in fsn and label \
                and label not in labels[code]:
            labels[code].append(label)
    codes = sorted(fsn, key=int)
    table = pa.Table.from_pydict({"code": codes, "fsn": [fsn[c] for c in codes],
                                  "mondo_labels": [labels.get(c, []) for c in codes]}, schema=_SCHEMA)
    metadata = {"format": FORMAT, "version": version, "sources": [Path(gps_tsv).name, Path(mondo_tsv).name],
                "attribution": ATTRIBUTION}
    table = table.replace_schema_metadata({_METADATA_KEY: json.dumps(metadata).encode()})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out_path, compression="zstd", compression_level=19)
    return {"concepts": len(codes), "with_mondo_label": sum(1 for c in codes if labels.get(c))}


def _read(path: Path) -> tuple[pa.Table, str]:
    path = require_file(Path(path), "SNOMED GPS file")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw is None or json.loads(raw).get("format") != FORMAT:
        raise source_error(path, f"not a GPS file written by `clin-linker vocab convert-gps` (format {FORMAT})",
                           "convert the GPS table with `clin-linker vocab convert-gps`, or leave the path out to "
                           "use the packaged one")
    return table, json.loads(raw)["version"]


def _hpo_names(loaded: list[VocabularyPart], codes: set[str]) -> dict[str, list[Name]]:
    """SNOMED key -> the names of the HPO terms (loaded earlier) whose xref names that GPS code."""
    out: dict[str, list[Name]] = defaultdict(list)
    for part in loaded:
        if part.vocabulary_id != "HPO" or not part.xrefs:
            continue
        targets: dict[str, list[str]] = defaultdict(list)
        for xref in part.xrefs:
            vocabulary, _, code = xref.xref_key.partition(":")
            if vocabulary == VOCABULARY_ID and code in codes:
                targets[xref.concept_key].append(xref.xref_key)
        for name in part.names:
            kind = _HPO_NAME_TYPES.get(name.name_type)
            for key in targets.get(name.concept_key, ()) if kind else ():
                out[key].append(Name(key, name.name, kind))
    return out


def load_snomed_gps(path: Path | None, loaded: list[VocabularyPart]) -> VocabularyPart:
    """The GPS (``path``: a converted .parquet; None: the packaged one) as a fallback SNOMED part."""
    source = Path(path) if path else PACKAGED_GPS
    table, version = _read(source)
    rows = table.to_pylist()
    hpo = _hpo_names(loaded, {r["code"] for r in rows})
    part = VocabularyPart(VOCABULARY_ID, f"Global Patient Set {version}", str(source), fallback=True)
    for row in rows:
        name, tag = split_fsn(row["fsn"])
        domain, concept_class, standard = tag_domain(tag)
        part.concepts.append(Concept(
            vocabulary_id=VOCABULARY_ID, concept_code=row["code"], concept_name=name, domain_id=domain,
            concept_class_id=concept_class, standard_concept=standard,
            attributes={"semantic_tag": tag, "fsn": row["fsn"], "source": "SNOMED CT Global Patient Set"}))
        key = concept_key(VOCABULARY_ID, row["code"])
        seen = {name.casefold()}
        part.names.append(Name(key, name, "preferred"))
        for extra in [Name(key, label, "synonym") for label in row["mondo_labels"]] + hpo.get(key, []):
            if extra.name.casefold() not in seen:
                seen.add(extra.name.casefold())
                part.names.append(extra)
    return part
