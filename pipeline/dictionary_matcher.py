"""High-recall dictionary mention detector over the concept store's names.

Names and note text are reduced to the same word keys (:mod:`.normalize`); the matcher scans the note's
words left to right and keeps the longest name that starts at each position (greedy, no overlaps).
It works on character offsets, not spaCy tokens, so "type-2" in a note still matches "type 2".
It stays useful next to the NER model: it knows every name in the vocabulary, the model generalises.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

from .normalize import name_variants, words

#: Longest name (in words) worth looking for: longer ICD-10-CM titles never occur verbatim in notes.
MAX_NAME_WORDS = 8
#: Single words that are vocabulary names but, alone in a note, almost never mean the concept.
GENERIC_WORDS = frozenset(
    """all other unspecified abnormal normal left right bilateral acute chronic severe mild moderate
    onset death history family patient male female tall short pain test level increased decreased
    present absent positive negative unknown use status care""".split()
)


@dataclass(frozen=True)
class Match:
    start_char: int
    end_char: int
    label: str
    concept_keys: tuple[str, ...]


def _usable(key: str) -> bool:
    tokens = key.split()
    if not tokens or len(tokens) > MAX_NAME_WORDS:
        return False
    if all(t in STOP_WORDS or t.isdigit() for t in tokens):
        return False
    if len(tokens) == 1 and (len(key) < 3 or key in GENERIC_WORDS):
        return False
    return True


def name_lookup(names: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Normalised name key -> concept keys, over every variant of every (concept_key, name) pair.

    The candidate generator uses it for exact-name evidence, the matcher for detection.
    """
    lookup: dict[str, set[str]] = defaultdict(set)
    for key, name in names:
        for variant in name_variants(name):
            lookup[variant].add(key)
    return {variant: tuple(sorted(keys)) for variant, keys in lookup.items()}


class DictionaryMatcher:
    """Finds the store's names in text (only names worth detecting alone, see ``_usable``)."""

    def __init__(self, lookup: dict[str, tuple[str, ...]], label_of: dict[str, str]):
        """``lookup``: from :func:`name_lookup`; ``label_of``: concept_key -> span label, for the concepts
        worth detecting (concepts absent from it are linkable but never detected on their own)."""
        self.phrases = {}
        for phrase, keys in lookup.items():
            detectable = tuple(k for k in keys if k in label_of)
            if detectable and _usable(phrase):
                self.phrases[phrase] = detectable
        self.max_words = max((p.count(" ") + 1 for p in self.phrases), default=0)
        self._label_of = label_of

    def __len__(self) -> int:
        return len(self.phrases)

    def _label(self, keys: tuple[str, ...]) -> str:
        counts = Counter(self._label_of[k] for k in keys)
        return max(sorted(counts), key=counts.__getitem__)

    def find(self, text: str) -> list[Match]:
        spans = [(m.start(), m.end(), m.group(0).lower()) for m in words(text)]
        found: list[Match] = []
        i = 0
        while i < len(spans):
            hit = None
            for n in range(min(self.max_words, len(spans) - i), 0, -1):
                key = " ".join(s[2] for s in spans[i : i + n])
                keys = self.phrases.get(key)
                if keys:
                    hit = (n, keys)
                    break
            if hit is None:
                i += 1
                continue
            n, keys = hit
            found.append(Match(spans[i][0], spans[i + n - 1][1], self._label(keys), keys))
            i += n
        return found
