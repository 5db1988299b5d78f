"""ICD-10-CM specificity rules: the one place that decides which code a coder may write for a category.

A coder writes billable codes. When retrieval, the Alphabetic Index or a dash code ("K59.0-": more
characters needed) leads to a category, the code is completed to a billable one *only* where the Tabular
List leaves no choice (docs/vocabularies.md, "Specificity rules"):

1. the one child that adds "unspecified" to its parent's description and, as ICD-10-CM numbers the
   unspecified child, ends in 0 or 9 (K59.0 -> K59.00 "Constipation, unspecified"; R10 -> R10.9; O36.599
   -> O36.5990 "..., not applicable or unspecified"). The position keeps out children where
   "unspecified" qualifies something narrower than the parent: A01.4 "Paratyphoid fever, unspecified"
   is not the unspecified form of A01 "Typhoid and paratyphoid fevers". "with unspecified ..." does not
   count: E11.8 "Type 2 diabetes mellitus with unspecified complications" asserts complications, so E11
   stays a category;
2. a code that needs a 7th character takes "A", initial encounter (S72.001 -> S72.001A);
3. the only child.

The rules repeat until the code is billable (S72.00 -> S72.009 -> S72.009A). Anything else keeps the
category with a flag for NOTE_NLP.term_modifiers: guessing "right" or "type 1" would put a fact in the
record that the note does not state.

The rules read only what every ICD-10-CM concept carries: code, name and Athena's concept class
("4-char billing code", "3-char nonbill code"), so the same rules serve the Tabular List part
(ontologies/icd10cm.py), a built ConceptStore and an Athena export. The parent of a code is its longest
proper prefix that is a code ("S32.9XXA" -> "S32.9", the placeholder X dropped), which is how the Tabular
List nests codes (tests/test_icd10cm_specificity.py checks it against the parser's parent attribute).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

VOCABULARY_ID = "ICD10CM"

#: term_modifiers flag of a category that no rule could complete: a coder must choose the child.
CATEGORY = "specificity=category"
#: term_modifiers flag of a code that a rule completed (the note did not state the added characters).
COMPLETED = "specificity=completed"

#: "unspecified" as a coder reads it; "with unspecified complications" asserts complications, so it does not count.
_UNSPECIFIED = re.compile(r"(?<!with )\bunspecified\b", re.IGNORECASE)
_INITIAL_ENCOUNTER = re.compile(r"\binitial encounter\b", re.IGNORECASE)


class IcdConcept(Protocol):
    """What the rules read of a concept (records.Concept and store.StoredConcept both qualify)."""

    vocabulary_id: str
    concept_code: str
    concept_name: str
    concept_class_id: str


def strip_dash(code: str) -> str:
    """The code a dash code stands for: ``"K59.0-"`` -> ``"K59.0"``, ``"C79.8-"`` -> ``"C79.8"``."""
    return code.strip().rstrip("-").rstrip(".")


class Specificity:
    """The ICD-10-CM codes of one Tabular List and the rules that complete a category.

    ``concepts``: any concepts; only those of vocabulary ICD10CM are read, e.g.
    ``Specificity(load_icd10cm().concepts)`` or ``Specificity(ConceptStore(dir).concepts())``.
    """

    def __init__(self, concepts: Iterable[IcdConcept]):
        self._names: dict[str, str] = {}
        self._billable: set[str] = set()
        for concept in concepts:
            if concept.vocabulary_id != VOCABULARY_ID:
                continue
            self._names[concept.concept_code] = concept.concept_name
            if "billing" in concept.concept_class_id:
                self._billable.add(concept.concept_code)
        if not self._names:
            raise ValueError("no ICD10CM concepts given: load the ICD-10-CM Tabular List (source icd10cm) "
                             "or an Athena export with ICD10CM first")
        self._children: dict[str, list[str]] = {}
        for code in sorted(self._names):
            parent = self.parent(code)
            if parent is not None:
                self._children.setdefault(parent, []).append(code)

    def __len__(self) -> int:
        return len(self._names)

    def is_valid(self, code: str) -> bool:
        """True when ``code`` (dotted, as the Tabular List writes it, e.g. ``"K59.00"``) is one of its codes."""
        return code in self._names

    def is_billable(self, code: str) -> bool:
        return code in self._billable

    def codes(self) -> frozenset[str]:
        """Every code of the Tabular List (the valid predictions of a coding evaluation)."""
        return frozenset(self._names)

    def billable_codes(self) -> frozenset[str]:
        return frozenset(self._billable)

    def name(self, code: str) -> str:
        return self._names[code]

    def parent(self, code: str) -> str | None:
        """The longest proper prefix of ``code`` that is a code; None for a 3-character category."""
        stem = code[:-1]
        while stem:
            if stem in self._names:
                return stem
            stem = stem[:-1]
        return None

    def children(self, code: str) -> list[str]:
        return self._children.get(code, [])

    def complete(self, code: str) -> tuple[str, str | None]:
        """``(code, flag)``: a billable code as it is (flag None), a category completed by the rules
        (flag :data:`COMPLETED`) or kept (flag :data:`CATEGORY`). A dash code is read as its category.

        Raises ValueError for a code that is not in the Tabular List (check :meth:`is_valid` first).
        """
        start = strip_dash(code)
        if start not in self._names:
            raise ValueError(f"{code!r} is not an ICD-10-CM code of this Tabular List; codes are written "
                             "with their dot as the Tabular List does (K59.00); check is_valid() first")
        current = start
        while current not in self._billable:
            chosen = self._unambiguous_child(current)
            if chosen is None:
                return current, CATEGORY
            current = chosen
        return current, (None if current == start else COMPLETED)

    def _unambiguous_child(self, code: str) -> str | None:
        """Rules 1-3 in order; None when the Tabular List leaves a choice (or the code has no child)."""
        children = self.children(code)
        own = len(_UNSPECIFIED.findall(self._names[code]))
        unspecified = [c for c in children
                       if c[-1] in "09" and len(_UNSPECIFIED.findall(self._names[c])) > own]
        if len(unspecified) == 1:
            return unspecified[0]
        initial = [c for c in children if len(c.replace(".", "")) == 7 and c.endswith("A")
                   and _INITIAL_ENCOUNTER.search(self._names[c])]
        if len(initial) == 1:
            return initial[0]
        return children[0] if len(children) == 1 else None
