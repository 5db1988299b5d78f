"""The site's coding habits, counted from coded notes: which codes the notes that say X were given.

Coded notes carry codes per document, not per mention, so the lexicon counts co-occurrence: for each key seen in a
note, every gold code of that note. Keys of three kinds, and a prior:

- ``mention``: a mention's normalised linking text ("fever", "arterial hypertension");
- ``retrieved``: a mention's best retrieved code, after the specificity rules (what the linker says "R50.9"
  -> what the coders wrote);
- ``ngram``: a word or word pair of the note ("adenopathy", "low back"), mention or not: coders code what the NER
  model did not mark, and the words that come with a code are its best evidence then (on CodiEsp dev this kind
  added 6 MAP points to the first two);
- the prior: no key, the code's own count (how common the code is at this site).

``association(kind, key)`` gives, per code, ``count / (notes with key + 1)`` (a smoothed share: a key seen in one
note is not certain) and the count. Only pairs seen in at least ``min_notes`` notes are kept: single notes' pairs
are noise, and a site's lexicon then holds no string that only one patient's note contained.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KINDS = ("mention", "retrieved", "ngram")
FORMAT = 1


@dataclass(frozen=True)
class CodedNote:
    """What the lexicon reads of one training note: its keys per kind and its gold codes (concept keys)."""

    keys: dict[str, frozenset[str]]
    gold: frozenset[str]


class CodingLexicon:
    """Key -> code counts per kind, the code prior, and the number of notes counted."""

    def __init__(self, tables: dict[str, dict[str, tuple[int, dict[str, int]]]], prior: dict[str, int],
                 n_notes: int, min_notes: int):
        self.tables = tables
        self.prior = prior
        self.n_notes = n_notes
        self.min_notes = min_notes

    @classmethod
    def fit(cls, notes: Iterable[CodedNote], min_notes: int = 2) -> "CodingLexicon":
        seen: dict[str, Counter] = {kind: Counter() for kind in KINDS}
        pairs: dict[str, dict[str, Counter]] = {kind: defaultdict(Counter) for kind in KINDS}
        prior: Counter = Counter()
        n_notes = 0
        for note in notes:
            n_notes += 1
            prior.update(note.gold)
            for kind in KINDS:
                for key in note.keys.get(kind, ()):
                    seen[kind][key] += 1
                    pairs[kind][key].update(note.gold)
        tables = {
            kind: {key: (n, {code: c for code, c in sorted(pairs[kind][key].items()) if c >= min_notes})
                   for key, n in sorted(seen[kind].items()) if n >= min_notes}
            for kind in KINDS
        }
        tables = {kind: {key: entry for key, entry in table.items() if entry[1]} for kind, table in tables.items()}
        return cls(tables, dict(sorted(prior.items())), n_notes, min_notes)

    def association(self, kind: str, key: str) -> Iterable[tuple[str, float, int]]:
        """``(code, count / (notes with key + 1), count)`` for every code seen with ``key``."""
        entry = self.tables[kind].get(key)
        if entry is None:
            return ()
        n, codes = entry
        return ((code, count / (n + 1), count) for code, count in codes.items())

    def prior_share(self, code: str) -> float:
        """The share of training notes that have ``code`` (0.5 added so an unseen code is not impossible)."""
        return (self.prior.get(code, 0) + 0.5) / (self.n_notes + 1)

    def save(self, path: Path) -> None:
        data = {"format": FORMAT, "n_notes": self.n_notes, "min_notes": self.min_notes, "prior": self.prior,
                "tables": {kind: {key: [n, codes] for key, (n, codes) in table.items()}
                           for kind, table in self.tables.items()}}
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"), sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> "CodingLexicon":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: coding lexicon format {data.get('format')!r}, this version reads {FORMAT}; "
                             "retrain the coder with `clin-linker train coder`")
        tables = {kind: {key: (n, codes) for key, (n, codes) in data["tables"].get(kind, {}).items()}
                  for kind in KINDS}
        return cls(tables, data["prior"], data["n_notes"], data["min_notes"])
