"""Abbreviations -> the long form the linker embeds (``clin_abbreviations`` component + ``linking_query``).

Why: "COPD" or "HTN" embed poorly next to the names in the concept store, while their long forms link well.
Two sources, in order of trust:

1. abbreviations the note defines itself, "chronic obstructive pulmonary disease (COPD)", found by scispaCy's
   AbbreviationDetector (Schwartz & Hearst); every later "COPD" in that note then links via its long form;
2. ``data/clinical_abbreviations.tsv``, a small documented list of undefined abbreviations frequent in notes
   (HTN, DM2, CHF, SOB, ...), matched case-sensitively as whole words.

The span's own text is untouched (it stays NOTE_NLP.lexical_variant); only the linking query changes.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

from scispacy.abbreviation import AbbreviationDetector
from spacy.language import Language
from spacy.tokens import Doc, Span

from .sections import DATA_DIR

ABBREVIATIONS_TSV = DATA_DIR / "clinical_abbreviations.tsv"

if not Doc.has_extension("abbreviation_table"):
    # the listed abbreviations the doc's pipeline uses (None = the shipped list)
    Doc.set_extension("abbreviation_table", default=None)


@lru_cache(maxsize=8)
def load_abbreviations(path: Optional[str] = None) -> Dict[str, str]:
    """``abbreviation -> expansion`` from a TSV (``#`` comments); the shipped list when ``path`` is None/empty."""
    table = {}
    for line in Path(path or ABBREVIATIONS_TSV).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            short, _, expansion = line.partition("\t")
            if short.strip() and expansion.strip():
                table[short.strip()] = expansion.strip()
    return table


@lru_cache(maxsize=8)
def _pattern(keys: tuple) -> re.Pattern:
    # longest first, so DM2 wins over DM; a key is a whole word (not part of "DMARD" or "N/V/D")
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![\w/])(?:{alternatives})(?![\w/])")


def _long_form_text(short: object) -> Optional[str]:
    if isinstance(short, dict):  # AbbreviationDetector(make_serializable=True)
        return short.get("long_text")
    long_form = short._.long_form
    return long_form if isinstance(long_form, str) or long_form is None else long_form.text


def _defined(span: Span) -> list:
    """(start_char, end_char, long form) of the note-defined short forms inside ``span``."""
    if not Doc.has_extension("abbreviations"):
        return []
    found = []
    for short in span.doc._.abbreviations or []:
        if isinstance(short, dict):
            short_span = span.doc[short["short_start"] : short["short_end"]]
            start, end = short_span.start_char, short_span.end_char
        else:
            start, end = short.start_char, short.end_char
        long_text = _long_form_text(short)
        if long_text and span.start_char <= start and end <= span.end_char:
            found.append((start, end, long_text))
    return found


def linking_query(span: Span, table: Optional[Dict[str, str]] = None) -> str:
    """The text to embed for ``span``: note-defined short forms -> their long form, listed abbreviations -> their
    expansion, anything else unchanged (so a span with no abbreviation gives ``span.text``)."""
    table = table if table is not None else (span.doc._.abbreviation_table or load_abbreviations())
    pattern = _pattern(tuple(table)) if table else None

    def expand(piece: str) -> str:
        return pattern.sub(lambda m: table[m.group(0)], piece) if pattern else piece

    pieces, cursor, offset = [], 0, span.start_char
    for start, end, long_text in sorted(_defined(span)):
        if start - offset < cursor:  # overlapping detections: keep the first
            continue
        pieces += [expand(span.text[cursor : start - offset]), long_text]
        cursor = end - offset
    pieces.append(expand(span.text[cursor:]))
    return "".join(pieces)


#: Words a window query reads around a mention (within its sentence): before it, and after it up to punctuation.
WINDOW_BEFORE, WINDOW_AFTER = 3, 6


def window_query(span: Span) -> str:
    """``span``'s linking query with the words around it: up to :data:`WINDOW_BEFORE` tokens before and
    :data:`WINDOW_AFTER` after, within its sentence, stopping at punctuation. Why: a procedure mention is often the
    modality alone ("CT", "ultrasound") while the body part that decides the ICD-10-PCS code is next to it ("CT of
    the abdomen", "renal ultrasound")."""
    doc = span.doc
    sentence = span.sent if doc.has_annotation("SENT_START") else doc[:]
    before = []
    for token in reversed(doc[max(sentence.start, span.start - WINDOW_BEFORE):span.start]):
        if token.is_punct:
            break
        before.insert(0, token.text_with_ws)
    after = []
    for token in doc[span.end:min(sentence.end, span.end + WINDOW_AFTER)]:
        if token.is_punct:
            break
        after.append(token.text_with_ws)
    return " ".join(p for p in ("".join(before).strip(), linking_query(span), "".join(after).strip()) if p)


class ClinAbbreviations:
    """scispaCy's AbbreviationDetector (fills ``doc._.abbreviations``) + the listed-abbreviation table."""

    def __init__(self, nlp: Language, name: str, table: str):
        self.name = name
        self.detector = AbbreviationDetector(nlp, name=name)
        self.table = load_abbreviations(table or None)

    def __call__(self, doc: Doc) -> Doc:
        doc._.abbreviation_table = self.table
        return self.detector(doc)


@Language.factory("clin_abbreviations", default_config={"table": ""}, assigns=["doc._.abbreviations"])
def make_clin_abbreviations(nlp: Language, name: str, table: str) -> ClinAbbreviations:
    """``table``: a TSV of ``abbreviation<TAB>expansion`` replacing data/clinical_abbreviations.tsv ("" = shipped)."""
    return ClinAbbreviations(nlp, name, table)
