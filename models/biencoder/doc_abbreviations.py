"""Expand short forms in linking pairs from the long forms that other mentions of the same document spell out.

Published linking protocols (BioSyn, SapBERT) resolve abbreviations with Ab3P on the document text before
retrieval, so "VSD" is queried as "ventricular septal defect". Pair files (``{"mention", "concept_ids",
"doc_id"}``) carry no text, but in NCBI/BC5CDR the defining long form is almost always annotated as a mention of
the same document. This module is the mention-level stand-in: a short form takes the long form of a same-document
mention that scispaCy's Schwartz & Hearst matcher (``find_abbreviation``) accepts. Only mention strings are used,
never gold ids. In the shipped pipeline the same job is done on the real text by the ``clin_abbreviations``
component.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import spacy
from scispacy.abbreviation import find_abbreviation, short_form_filter


def looks_like_short_form(mention: str) -> bool:
    """One word of 2-9 characters with at least two capitals (``VSD``, ``MDs``, ``NSCLC``), as S&H requires."""
    if " " in mention or not 2 <= len(mention) <= 9:
        return False
    return sum(c.isupper() for c in mention) >= 2 and mention[0].isalpha()


def _initials_matched(short: str, words: list[str]) -> int:
    """How many of the short form's letters are word initials of the long form, in order (acronym strength)."""
    letters = [c.lower() for c in short if c.isalnum()]
    initials = [w[0].lower() for w in words if w]
    i = n = 0
    for c in letters:
        while i < len(initials) and initials[i] != c:
            i += 1
        if i == len(initials):
            break
        n += 1
        i += 1
    return n


class DocAbbreviationExpander:
    """``expand(pairs)`` returns copies of the pairs with short forms replaced by a same-document long form."""

    def __init__(self) -> None:
        self.nlp = spacy.blank("en")

    def long_form(self, short: str, candidates: Sequence[str]) -> str | None:
        """The best candidate that S&H accepts as a whole long form of ``short`` (or None).

        A candidate qualifies when the S&H expansion covers it from its first word and it has no more words
        than min(letters + 5, 2 * letters) (S&H's own bound); among those the one whose word initials spell
        most of the short form wins, then the most frequent in the document.
        """
        sdoc = self.nlp.make_doc(short)
        if len(sdoc) != 1 or not short_form_filter(sdoc[:]):
            return None
        letters = sum(c.isalnum() for c in short)
        counts = Counter(candidates)
        best: tuple[int, int] | None = None
        choice = None
        for cand, freq in counts.items():
            ldoc = self.nlp.make_doc(cand)
            words = [t.text for t in ldoc if t.is_alpha or t.like_num]
            if len(words) < 2 or len(words) > min(letters + 5, 2 * letters) or cand.lower() == short.lower():
                continue
            _, span = find_abbreviation(ldoc[:], sdoc[:])
            if span is None or span.start != 0:
                continue
            key = (_initials_matched(short, words), freq)
            if best is None or key > best:
                best, choice = key, cand
        return choice

    def expand(self, pairs: Sequence[dict]) -> list[dict]:
        """Pairs with ``mention`` expanded where possible; the original is kept as ``mention_as_written``."""
        by_doc: dict[str, list[str]] = {}
        for p in pairs:
            if p.get("doc_id") is not None:
                by_doc.setdefault(str(p["doc_id"]), []).append(p["mention"])
        out = []
        memo: dict[tuple[str, str], str | None] = {}
        for p in pairs:
            m, doc = p["mention"], p.get("doc_id")
            if doc is None or not looks_like_short_form(m):
                out.append(p)
                continue
            key = (str(doc), m)
            if key not in memo:
                memo[key] = self.long_form(m, [c for c in by_doc[str(doc)] if c != m])
            lf = memo[key]
            out.append(dict(p, mention=lf, mention_as_written=m) if lf else p)
        return out
