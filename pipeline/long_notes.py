"""Long notes are data, not errors: run them through the pipeline in pieces and join the pieces into one ``Doc``.

Why: spaCy refuses texts longer than ``nlp.max_length`` (1,000,000 characters), and a discharge summary with pasted
lab tables can exceed it; the job used to dead-letter such a note. Every component of our pipeline reads a window of
text at most a few sentences wide, so a note cut at paragraph breaks and processed piece by piece gets the same
mentions as far as those components can tell. ``Doc.from_docs`` joins the pieces back with every entity and span
extension shifted to its exact offset in the whole note (the pieces keep their trailing whitespace, so the joined
text is the note, character for character), and the rows, codes and events are computed on that one ``Doc``.

Cuts depend on the text alone (:func:`piece_bounds`), so a long note gives the same rows however it is batched.
A section that runs across a cut keeps its title: a piece's mentions before its first header get the section of
the previous piece's last mention.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import TypeVar

from spacy.language import Language
from spacy.tokens import Doc

#: Longest piece, in characters: well under spaCy's max_length and small enough to bound a worker's memory.
PIECE_CHARS = 100_000
#: Where a piece may end, best first: after a paragraph break, a line break, a sentence end, a space.
_CUTS = ("\n\n", "\n", ". ", " ")
Context = TypeVar("Context")


def piece_bounds(text: str, limit: int = PIECE_CHARS) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive pieces covering ``text``, each at most ``limit`` characters.

    A piece ends after the last paragraph break in its last three quarters, else after the last line break, sentence
    end or space there, else exactly at the limit.
    """
    bounds = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        for separator in _CUTS:
            found = text.rfind(separator, start + limit // 4, start + limit)
            if found != -1:
                end = found + len(separator)
                break
        bounds.append((start, end))
        start = end
    bounds.append((start, len(text)))
    return bounds


def pipe_in_pieces(nlp: Language, items: Iterable[tuple[str, Context]], limit: int = PIECE_CHARS,
                   batch_size: int | None = None) -> Iterator[tuple[Doc, Context]]:
    """``nlp.pipe(items, as_tuples=True)`` that also takes texts longer than ``limit``: those run as pieces and
    come back as one ``Doc`` of the whole text (see the module docstring)."""
    pieces: list[tuple[str, tuple[int, int, int]]] = []
    contexts: list[Context] = []
    for number, (text, context) in enumerate(items):
        contexts.append(context)
        bounds = piece_bounds(text, limit)
        pieces.extend((text[s:e], (number, i, len(bounds))) for i, (s, e) in enumerate(bounds))
    parts: list[Doc] = []
    for doc, (number, index, count) in nlp.pipe(pieces, as_tuples=True, batch_size=batch_size):
        parts.append(doc)
        if index == count - 1:
            yield (parts[0] if count == 1 else _join(parts)), contexts[number]
            parts = []


def _join(parts: list[Doc]) -> Doc:
    """One Doc of the pieces, entities and span/token extensions at their offsets in the whole text."""
    last_section = None
    for part in parts:  # carry a section across a cut: spans before the piece's first header
        for span in part.ents:
            if span._.section is None and last_section is not None:
                span._.section = last_section
            last_section = span._.section if span._.section is not None else last_section
    with warnings.catch_warnings():  # doc-level extension values (section lists) are per piece: dropping them is fine
        warnings.simplefilter("ignore")
        return Doc.from_docs(parts, ensure_whitespace=False)
