"""The ICD-10-CM Alphabetic Index as names of the codes it leads to (source kind ``icd10cm-index``).

Coders find a code by looking a term up in the Alphabetic Index, not the Tabular List: "Constipation"
leads to K59.00, "Hypertension (essential)" to I10. Its entries become ``index_term`` names of those codes,
phrased as a note would say them (:mod:`.icd10cm_index_phrases`). How each part of an entry is used is
in docs/vocabularies.md, "ICD-10-CM Alphabetic Index":

- main index and Neoplasm Table only; the Table of Drugs and the External Cause Index are skipped;
- nonessential modifiers (in parentheses) do not change the code: the name is the term without them,
  plus a few variants with an adjective modifier in front or a "with/of ..." modifier after;
- a "see" entry takes the code of the entry it points to when that resolves to one code, else it is
  dropped; "see also" is a pointer only (the entry's own code, if any, is used);
- every code goes through the specificity rules (:mod:`.icd10cm_specificity`): a dash code ("H93.29-")
  or a category becomes the billable code where the Tabular List leaves no choice, else names the category;
- an entry whose code is not in the Tabular List the store holds is dropped.

Package data: the CDC index flattened to TSV (one row per entry, "main term, subterm, ..." plus level)
is converted by :func:`convert_index` (``clin-linker vocab convert-index``) into a small Parquet file of
our own layout: the entry's path as a list of terms, its modifiers as a list, code, see, see also.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import require_file, source_error
from .icd10cm_index_phrases import is_adjective, is_connective, natural_phrases
from .icd10cm_specificity import CATEGORY, IcdConcept, Specificity, strip_dash
from .records import Name, VocabularyPart, concept_key
from .tsv import read_tsv

log = logging.getLogger(__name__)

VOCABULARY_ID = "ICD10CM"
PACKAGED_INDEX = Path(__file__).parent / "data" / "icd10cm_index_fy2025.parquet"
FORMAT = 1
_METADATA_KEY = b"clin_linker.icd10cm_index"

#: The parts of the CDC index that become names; the others are dropped by the converter.
KEPT_TABLES = ("index", "neoplasm_table")
TSV_COLUMNS = ("concept_id", "name", "table", "qualifier", "level", "main_term", "nonessential_modifiers",
               "see", "see_also")
_TSV_FIX = ("pass the CDC Alphabetic Index flattened to TSV with the columns "
            + ", ".join(TSV_COLUMNS) + " (../shared/data/README.md §5 describes the layout)")

#: Modifier variants per entry: the first few adjective/connective modifiers (docs/vocabularies.md).
MAX_MODIFIER_VARIANTS = 6

#: Neoplasm Table column -> the names of a site S ("{}" is S). Small on purpose: the Tabular List already
#: says "Malignant neoplasm of ..."; these add the site words of the index and the words notes use.
NEOPLASM_NAMES = {
    "MalignantPrimary": ("malignant neoplasm of {}", "{} cancer"),
    "MalignantSecondary": ("secondary malignant neoplasm of {}", "metastasis to {}"),
    "CaInSitu": ("carcinoma in situ of {}",),
    "Benign": ("benign neoplasm of {}",),
    "UncertainBehavior": ("neoplasm of uncertain behavior of {}",),
    "UnspecifiedBehavior": ("neoplasm of {}", "{} tumor"),
}
#: The same for the table's top row ("Neoplasm, neoplastic": site not stated).
NEOPLASM_NO_SITE = {
    "MalignantPrimary": ("malignant neoplasm", "cancer"),
    "MalignantSecondary": ("secondary malignant neoplasm", "metastasis"),
    "CaInSitu": ("carcinoma in situ",),
    "Benign": ("benign neoplasm",),
    "UncertainBehavior": ("neoplasm of uncertain behavior",),
    "UnspecifiedBehavior": ("neoplasm", "tumor"),
}

_SCHEMA = pa.schema([
    ("table", pa.string()),
    ("qualifier", pa.string()),
    ("path", pa.list_(pa.string())),
    ("modifiers", pa.list_(pa.string())),
    ("code", pa.string()),
    ("see", pa.string()),
    ("see_also", pa.string()),
])
_MODIFIER = re.compile(r"\(([^()]*)\)")
_PARENTHESES = re.compile(r"\([^()]*\)")
_CODING_WORDS = re.compile(r"\b(?:NEC|NOS)\b")


@dataclass(frozen=True)
class Entry:
    """One index entry: its path of terms (main term first), nonessential modifiers, code and pointers."""

    table: str
    qualifier: str
    path: tuple[str, ...]
    modifiers: tuple[str, ...]
    code: str | None
    see: str | None
    see_also: str | None


# ---------------------------------------------------------------------------------------------- reading

def read_cdc_tsv(path: Path, counts: Counter | None = None) -> Iterator[Entry]:
    """Entries of the flattened CDC index TSV (main index and Neoplasm Table), in file order.

    The TSV spells each entry as "main term, subterm, ..."; terms contain commas themselves
    ("Abdomen, abdominal"), so the path is rebuilt from the level column: an entry's name is its
    parent's name + ", " + its own term. Rows that break this are counted as ``malformed`` and skipped.
    """
    counts = Counter() if counts is None else counts
    stacks: dict[str, list[str]] = {}
    for line, row in read_tsv(require_file(Path(path), "ICD-10-CM index TSV"), TSV_COLUMNS, _TSV_FIX):
        counts["rows"] += 1
        table = row["table"]
        if table not in KEPT_TABLES:
            counts[f"skipped_{table}"] += 1
            continue
        try:
            level = int(row["level"])
        except ValueError:
            raise source_error(path, f"level {row['level']!r} is not a number", _TSV_FIX,
                               line=line, field="level") from None
        stack = stacks.setdefault(table, [])
        term = _own_term(row["name"], row["main_term"], level, stack)
        if term is None:
            counts["malformed"] += 1
            log.debug("%s, line %d: name does not extend its parent entry; skipped", path, line)
            continue
        del stack[level:]
        stack.append(term)
        yield Entry(table, row["qualifier"], tuple(stack), tuple(_MODIFIER.findall(row["nonessential_modifiers"])),
                    row["concept_id"].removeprefix(f"{VOCABULARY_ID}:") or None,
                    row["see"] or None, row["see_also"] or None)


def _own_term(name: str, main_term: str, level: int, stack: list[str]) -> str | None:
    if level == 0:
        return name if name == main_term else None
    if level > len(stack):
        return None
    parent = ", ".join(stack[:level])
    term = name[len(parent) + 2:] if name.startswith(parent + ", ") else ""
    return term.strip() or None


def convert_index(tsv_path: Path, out_path: Path, *, version: str = "unknown") -> dict[str, int]:
    """Convert the flattened CDC index TSV into the package-data Parquet file; returns row counts."""
    counts: Counter = Counter()
    entries = list(read_cdc_tsv(Path(tsv_path), counts))
    table = pa.Table.from_pylist(
        [{"table": e.table, "qualifier": e.qualifier or None, "path": list(e.path), "modifiers": list(e.modifiers),
          "code": e.code, "see": e.see, "see_also": e.see_also} for e in entries],
        schema=_SCHEMA,
    )
    metadata = {"format": FORMAT, "version": version, "source": Path(tsv_path).name,
                "attribution": f"ICD-10-CM {version} Index, CDC/NCHS (public domain)"}
    table = table.replace_schema_metadata({_METADATA_KEY: json.dumps(metadata).encode()})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out_path, compression="zstd", compression_level=19)
    counts["kept"] = len(entries)
    return dict(counts)


def read_entries(path: Path) -> tuple[list[Entry], str]:
    """Entries and version of a converted ``.parquet`` file or of a flattened CDC index ``.tsv``."""
    path = require_file(Path(path), "ICD-10-CM index file")
    if path.suffix != ".parquet":
        return list(read_cdc_tsv(path)), "unknown"
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw is None or json.loads(raw).get("format") != FORMAT:
        raise source_error(path, "not an index file written by `clin-linker vocab convert-index` "
                           f"(format {FORMAT})", "convert the CDC index TSV with `clin-linker vocab convert-index`")
    entries = [Entry(r["table"], r["qualifier"] or "", tuple(r["path"]), tuple(r["modifiers"]), r["code"], r["see"],
                     r["see_also"]) for r in table.to_pylist()]
    return entries, json.loads(raw)["version"]


# ------------------------------------------------------------------------------------------ see entries

def _key(text: str) -> str:
    """How a "see" target and an entry name are compared: no modifiers, NEC/NOS, case or extra spaces."""
    text = _CODING_WORDS.sub("", _PARENTHESES.sub("", text)).lower()
    return ", ".join(p for p in (" ".join(part.split()) for part in text.split(",")) if p)


def _entry_keys(entry: Entry) -> set[str]:
    """An entry is found by its full name and by its name with each term's first form only
    ("Neoplasm, neoplastic, sinus" also as "Neoplasm, sinus": how "see" targets are written)."""
    return {_key(", ".join(entry.path)), _key(", ".join(term.split(",")[0] for term in entry.path))}


#: The column a "see Neoplasm, <site>, <behaviour>" target names ("Liposarcoma - see Neoplasm, connective
#: tissue, malignant").
_BEHAVIOURS = {"malignant": "MalignantPrimary", "secondary": "MalignantSecondary", "in situ": "CaInSitu",
               "benign": "Benign", "uncertain behavior": "UncertainBehavior",
               "unspecified behavior": "UnspecifiedBehavior"}


class SeeResolver:
    """Resolves "see" entries to the codes of the entries they point to, when the target is unambiguous."""

    MAX_HOPS = 3

    def __init__(self, entries: Iterable[Entry]):
        self._by_key: dict[str, list[Entry]] = {}
        for entry in entries:
            for key in _entry_keys(entry):
                self._by_key.setdefault(key, []).append(entry)

    def resolve(self, target: str, hops: int = 0) -> dict[str, str] | None:
        """``{qualifier: code}`` the target leads to: ``{"": code}`` for a main-index entry, one code per
        column for a Neoplasm Table site; None when the target is unknown, has no code or several codes."""
        key = _key(target)
        found = self._by_key.get(key)
        if found is None:
            return self._resolve_behaviour(key)
        coded = [e for e in found if e.code]
        if not coded:
            pointers = {e.see for e in found if e.see}
            if len(pointers) == 1 and hops < self.MAX_HOPS:
                return self.resolve(pointers.pop(), hops + 1)
            return None
        codes: dict[str, set[str]] = {}
        for entry in coded:
            codes.setdefault(entry.qualifier, set()).add(entry.code)
        if any(len(c) > 1 for c in codes.values()):
            return None
        return {qualifier: c.pop() for qualifier, c in codes.items()}

    def _resolve_behaviour(self, key: str) -> dict[str, str] | None:
        """"neoplasm, skin, benign": the Benign column of the site entry "Neoplasm, skin"."""
        site, _, behaviour = key.rpartition(", ")
        qualifier = _BEHAVIOURS.get(behaviour)
        columns = self.resolve(site) if qualifier and site else None
        return {"": columns[qualifier]} if columns and qualifier in columns else None


# ------------------------------------------------------------------------------------------------ names

def entry_phrases(entry: Entry) -> list[str]:
    """The names one coded entry gives its code (natural order; see the module docstring)."""
    if entry.table == "neoplasm_table":
        return _neoplasm_phrases(entry)
    phrases = natural_phrases(list(entry.path))
    if not phrases:
        return []
    variants: list[str] = []
    for modifier in (" ".join(m.split()) for m in entry.modifiers):
        if is_connective(modifier):
            variants.append(f"{phrases[0]} {modifier}")
        elif " " not in modifier and is_adjective(modifier):
            variants.extend(natural_phrases(list(entry.path), adjective=modifier)[:1])
    return [*phrases, *variants[:MAX_MODIFIER_VARIANTS]]


def _neoplasm_phrases(entry: Entry) -> list[str]:
    if len(entry.path) == 1:
        return list(NEOPLASM_NO_SITE.get(entry.qualifier, ()))
    sites = natural_phrases(list(entry.path[1:]), site=True)
    return [template.format(site) for site in sites for template in NEOPLASM_NAMES.get(entry.qualifier, ())]


@dataclass
class IndexNames:
    """The names the index gives, with counts of what was used, resolved and dropped."""

    names: list[Name]
    counts: Counter


def index_names(entries: list[Entry], specificity: Specificity) -> IndexNames:
    """Index entries -> ``index_term`` names of the codes they lead to (after the specificity rules)."""
    counts: Counter = Counter(entries=len(entries))
    resolver = SeeResolver(entries)
    seen: set[tuple[str, str]] = set()
    names: list[Name] = []
    for entry in entries:
        for coded in _coded(entry, resolver, counts):
            if not specificity.is_valid(strip_dash(coded.code)):
                counts["dropped_code_not_in_tabular"] += 1
                continue
            code, flag = specificity.complete(coded.code)
            if coded.code.endswith("-"):
                counts["dash_category" if flag == CATEGORY else "dash_completed"] += 1
            phrases = entry_phrases(coded)
            if not phrases:
                counts["dropped_no_phrase"] += 1
            key = concept_key(VOCABULARY_ID, code)
            for phrase in phrases:
                if (key, phrase.lower()) not in seen:
                    seen.add((key, phrase.lower()))
                    names.append(Name(key, phrase, "index_term"))
    counts["names"] = len(names)
    return IndexNames(names, counts)


def _coded(entry: Entry, resolver: SeeResolver, counts: Counter) -> list[Entry]:
    """The entry itself when it has a code; its resolved copies for a "see" entry (one per Neoplasm Table
    column for a site); nothing for a heading or a "see" that does not resolve."""
    if entry.code:
        return [entry]
    if not entry.see:
        counts["headings_without_code"] += 1
        return []
    resolved = resolver.resolve(entry.see) or {}
    if entry.table == "neoplasm_table":
        usable = [(q, c) for q, c in sorted(resolved.items()) if q in NEOPLASM_NAMES]
    else:
        usable = [("", resolved[""])] if "" in resolved else []
    counts["see_resolved" if usable else "see_dropped"] += 1
    return [replace(entry, qualifier=q, code=c) for q, c in usable]


def load_icd10cm_index(path: Path | None, concepts: Iterable[IcdConcept]) -> VocabularyPart:
    """The index (``path``: converted .parquet or CDC .tsv; None: the packaged FY2025 index) as a part that
    holds only names, for the ICD10CM ``concepts`` loaded before it (the Tabular List or Athena)."""
    source = Path(path) if path else PACKAGED_INDEX
    entries, version = read_entries(source)
    result = index_names(entries, Specificity(concepts))
    log.info("ICD-10-CM index %s: %s", source.name, dict(result.counts))
    return VocabularyPart(VOCABULARY_ID, f"{version} Alphabetic Index", str(source), names=result.names)
