"""Text normalisation shared by the dictionary detector and the candidate generator.

Both sides must reduce a name and a mention to the same key, otherwise an exact match in the note
would be missed: lower-case alphanumeric runs joined by single spaces.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PAREN = re.compile(r"\s*\([^()]*\)")
_UNSPECIFIED = re.compile(r",?\s*\b(unspecified|not otherwise specified|nos)\b\.?", re.IGNORECASE)


def words(text: str) -> Iterator[re.Match[str]]:
    """Alphanumeric runs of ``text`` with their character positions (punctuation and ``_`` split words)."""
    return _WORD.finditer(text)


def normalize(text: str) -> str:
    """The lookup key of a name or mention: ``"Type-2 Diabetes"`` -> ``"type 2 diabetes"``."""
    return " ".join(m.group(0).lower() for m in words(text))


def name_variants(name: str) -> set[str]:
    """Normalised keys under which a vocabulary name can appear in a note.

    ICD-10-CM writes non-essential modifiers in parentheses ("Essential (primary) hypertension") and
    appends "unspecified"; notes say "essential hypertension". Both the full and the reduced forms
    are returned.
    """
    variants = {normalize(name)}
    reduced = _UNSPECIFIED.sub("", _PAREN.sub("", name))
    variants.add(normalize(reduced))
    variants.discard("")
    return variants
