"""SapBERT-style training pairs from the open synonym tables and the linking train splits.

Groups: names are grouped by concept id; ids are joined across vocabularies ONLY through
- ``skos:exactMatch`` rows of ``mondo_xrefs.tsv`` (MONDO <-> MESH/SNOMEDCT/ICD10CM/OMIM/DOID/UMLS),
- CTD MEDIC ``alt_ids`` (OMIM/DOID ids that CTD gives as the same disease),
- ``doid_xrefs.tsv`` db-xrefs that are one-to-one (the xref id belongs to a single DOID and the DOID has a
  single xref of that vocabulary), to keep DO's looser xrefs from merging distinct diseases.
A union-find joins them; an edge that would grow a group beyond ``MAX_GROUP_IDS`` ids is skipped, so a
chain of xrefs cannot build a giant "concept".

Not used as positives: HPO/DOID broad/narrow/related synonyms, ICD-10-CM Neoplasm/Drug table rows
(their codes are neoplasm/poisoning codes, not the named substance/site), index rows without a code.

Pairs: per group, at most ``per_group`` (anchor, positive) pairs of distinct names, seeded. Train mentions of
NCBI-disease / BC5CDR (single-id mentions) are paired with names of their concept (MEDIC for diseases,
MeSH descriptor labels for chemicals). Dev splits are never read here.
"""
from __future__ import annotations

import csv
import json
import os
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

#: Where training looks for the open data when neither ``--data`` nor ``$CLIN_LINKER_DATA`` is given: the
#: ``shared/data`` folder beside a source checkout (developers' layout). Installed packages have no such folder.
CHECKOUT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATA_ENV = "CLIN_LINKER_DATA"
MAX_GROUP_IDS = 40
#: Id prefixes of CTD MEDIC concepts (the NCBI/BC5CDR dictionary): groups holding one get priority in training.
MEDIC_ID_PREFIXES = ("MESH:", "OMIM:")

# file -> name_type values kept (None = all)
NAME_FILES = {
    "ctd_medic_names.tsv": None,
    "mesh_descriptor_labels.tsv": None,
    "hpo_names.tsv": {"label", "synonym_exact", "synonym_layperson"},
    "doid_names.tsv": {"label", "synonym_exact"},
    "icd10cm_tabular_terms.tsv": None,
    "icd10cm_index_terms.tsv": {"index_term"},
    "snomed_gps_fsn.tsv": None,
}


def data_dir(path: str | Path | None = None) -> Path:
    """The open training data folder: ``path``, else ``$CLIN_LINKER_DATA``, else the checkout's ``shared/data``.

    Fails with the fix when none exists, instead of guessing machine paths.
    """
    chosen = Path(path or os.environ.get(DATA_ENV) or CHECKOUT_DATA)
    if chosen.is_dir():
        return chosen
    raise FileNotFoundError(
        f"training data folder {chosen} does not exist; pass --data DIR or set {DATA_ENV} to the folder "
        "holding synonyms/ and linking/ (the open data the model cards name)")


def _rows(path: Path):
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)


class UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}

    def find(self, x: str) -> str:
        p = self.parent.setdefault(x, x)
        self.size.setdefault(x, 1)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str, max_size: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.size[ra] + self.size[rb] > max_size:
            return False
        if ra > rb:  # deterministic root choice
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


@dataclass
class SynonymGroups:
    names: dict[str, list[str]]          # group root -> distinct names (first seen first)
    root_of: dict[str, str]              # any id -> group root
    stats: dict


def build_groups(data: str | Path | None = None, max_group_ids: int = MAX_GROUP_IDS) -> SynonymGroups:
    syn = data_dir(data) / "synonyms"
    uf = UnionFind()
    names_by_id: dict[str, list[str]] = defaultdict(list)
    stats: dict = {"names": {}, "edges": {}, "edges_skipped_size": 0}
    for fname, keep in NAME_FILES.items():
        n = 0
        for r in _rows(syn / fname):
            cid = (r.get("concept_id") or "").strip()
            name = " ".join((r.get("name") or "").split())
            if not cid or not name or (keep is not None and r.get("name_type") not in keep):
                continue
            if fname.startswith("icd10cm_index") and r.get("table") != "index":
                continue
            names_by_id[cid].append(name)
            uf.find(cid)
            n += 1
        stats["names"][fname] = n

    def edge(kind, a, b):
        ok = uf.union(a, b, max_group_ids)
        stats["edges"][kind] = stats["edges"].get(kind, 0) + ok
        stats["edges_skipped_size"] += not ok

    # 1. MEDIC alt ids
    for r in _rows(syn / "ctd_medic_names.tsv"):
        if r.get("name_type") == "preferred":
            for alt in (r.get("alt_ids") or "").split("|"):
                if alt.strip():
                    edge("medic_alt_ids", r["concept_id"], alt.strip())
    # 2. MONDO exactMatch (+ MONDO labels as names)
    for r in _rows(syn / "mondo_xrefs.tsv"):
        if r["predicate"] != "skos:exactMatch":
            continue
        mondo = r["concept_id"]
        if r.get("label") and mondo not in names_by_id:
            names_by_id[mondo].append(" ".join(r["label"].split()))
        edge("mondo_exactMatch", mondo, r["xref_id"])
    # 3. DOID one-to-one db-xrefs
    doid_rows = [r for r in _rows(syn / "doid_xrefs.tsv")
                 if r["xref_id"].split(":")[0] in {"MESH", "OMIM", "ICD10CM", "SNOMEDCT", "UMLS"}]
    per_xref: dict[str, set[str]] = defaultdict(set)
    per_doid_vocab: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in doid_rows:
        per_xref[r["xref_id"]].add(r["concept_id"])
        per_doid_vocab[(r["concept_id"], r["xref_id"].split(":")[0])].add(r["xref_id"])
    for r in doid_rows:
        if len(per_xref[r["xref_id"]]) == 1 and len(per_doid_vocab[(r["concept_id"], r["xref_id"].split(":")[0])]) == 1:
            edge("doid_xref_1to1", r["concept_id"], r["xref_id"])

    groups: dict[str, list[str]] = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    for cid in sorted(names_by_id):
        root = uf.find(cid)
        for name in names_by_id[cid]:
            key = name.lower()
            if key not in seen[root]:
                seen[root].add(key)
                groups[root].append(name)
    root_of = {x: uf.find(x) for x in list(uf.parent)}
    stats["groups"] = len(groups)
    stats["groups_with_2plus_names"] = sum(1 for v in groups.values() if len(v) > 1)
    stats["names_total"] = sum(len(v) for v in groups.values())
    return SynonymGroups(dict(groups), root_of, stats)


@dataclass
class Pair:
    anchor: str
    positive: str
    group: str
    source: str  # "synonyms" | "mention:<corpus>"


def synonym_pairs(groups: SynonymGroups, per_group: int = 8, seed: int = 13) -> list[Pair]:
    rng = random.Random(seed)
    out: list[Pair] = []
    for root in sorted(groups.names):
        names = groups.names[root]
        if len(names) < 2:
            continue
        cands = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]] if len(names) <= 12 else None
        if cands is None:
            shuffled = names[:]
            rng.shuffle(shuffled)
            cands = list(zip(shuffled, shuffled[1:] + shuffled[:1]))
        rng.shuffle(cands)
        for a, b in cands[:per_group]:
            if rng.random() < 0.5:
                a, b = b, a
            out.append(Pair(a, b, root, "synonyms"))
    return out


def mention_pairs(groups: SynonymGroups, corpora=("ncbi_disease", "bc5cdr"), per_mention: int = 2,
                  data: str | Path | None = None, seed: int = 13) -> list[Pair]:
    """Unique (mention, single gold id) of the TRAIN splits paired with names of the gold concept."""
    rng = random.Random(seed)
    out: list[Pair] = []
    for corpus in corpora:
        seen: set[tuple[str, str]] = set()
        with open(data_dir(data) / "linking" / corpus / "train.jsonl", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                ids = r.get("concept_ids") or []
                if len(ids) != 1:
                    continue
                key = (r["mention"].lower(), ids[0])
                if key in seen:
                    continue
                seen.add(key)
                root = groups.root_of.get(ids[0])
                names = [n for n in groups.names.get(root, []) if n.lower() != key[0]] if root else []
                if not names:
                    continue
                chosen = [names[0]] + rng.sample(names[1:], min(per_mention - 1, len(names) - 1))
                for n in chosen[:per_mention]:
                    out.append(Pair(r["mention"], n, root, f"mention:{corpus}"))
    return out


def build_pairs(max_pairs: int | None = None, per_group: int = 8, seed: int = 13, data=None,
                mention_repeat: int = 2) -> tuple[list[Pair], SynonymGroups, dict]:
    """All training pairs, shuffled; capped at ``max_pairs`` keeping mention pairs and MEDIC groups first."""
    groups = build_groups(data)
    syn = synonym_pairs(groups, per_group=per_group, seed=seed)
    men = mention_pairs(groups, data=data, seed=seed)
    rng = random.Random(seed)
    medic_roots = {groups.root_of[c] for c in groups.root_of if c.startswith(MEDIC_ID_PREFIXES)}
    pri = [p for p in syn if p.group in medic_roots]
    rest = [p for p in syn if p.group not in medic_roots]
    rng.shuffle(rest)
    mentions = men * mention_repeat
    pairs = mentions + pri + rest
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = pairs[:max_pairs]
    rng.shuffle(pairs)
    stats = dict(groups.stats)
    stats.update({"synonym_pairs_available": len(syn), "mention_pairs_unique": len(men),
                  "mention_repeat": mention_repeat, "medic_group_pairs": len(pri),
                  "pairs_used": len(pairs), "per_group": per_group, "seed": seed})
    return pairs, groups, stats


if __name__ == "__main__":
    import time
    t = time.time()
    pairs, groups, stats = build_pairs()
    print(json.dumps(stats, indent=1), f"{time.time() - t:.1f}s")
    for p in pairs[:15]:
        print(p)
