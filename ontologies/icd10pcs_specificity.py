"""ICD-10-PCS specificity: which code a coder may write when retrieval or a site's habit gives a prefix.

An ICD-10-PCS code has seven axes; a note names the procedure ("cholecystectomy") and often the approach
("laparoscopic"), rarely the device or qualifier. A 3- or 4-character prefix (``0FT4`` "Resection of Gallbladder")
is completed to a 7-character code *only* where the note leaves no choice (docs/vocabularies.md, "ICD-10-PCS"):

1. the prefix has one code under it (``08J1`` -> ``08J1XZZ``);
2. the mention names the approach (:data:`APPROACH_WORDS`: "laparoscopic" is Percutaneous Endoscopic, 4) and one
   code under the prefix has that approach and neither device nor qualifier (``0FT4`` + "laparoscopic" ->
   ``0FT44ZZ``).

Anything else keeps the prefix with the flag :data:`CATEGORY`, which is what CodiEsp-P's coders wrote when the text
did not say more (their 4-character codes): guessing "open approach" would put a fact in the record that the note
does not state. The flags are ICD-10-CM's (:mod:`.icd10cm_specificity`), so NOTE_NLP.term_modifiers reads the same.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from .icd10cm_specificity import CATEGORY, COMPLETED, IcdConcept

VOCABULARY_ID = "ICD10PCS"

#: Words of a mention that name the approach (the 5th character in the Medical and Surgical section), our list
#: after the ICD-10-PCS approach definitions. "Endoscopic" alone is not here: it is 4 (percutaneous) or 8 (via a
#: natural opening) depending on the body part, which the tables decide.
APPROACH_WORDS: dict[str, str] = {
    "open": "0", "percutaneous": "3", "endovascular": "3", "laparoscopic": "4", "laparoscopically": "4",
    "thoracoscopic": "4", "arthroscopic": "4", "robotic": "4", "transoral": "7", "transvaginal": "7",
    "transanal": "7",
}
_WORD = re.compile(r"[a-z]+")


def approach_of(text: str) -> str | None:
    """The approach character ``text`` names, None when it names none or two different ones."""
    found = {APPROACH_WORDS[w] for w in _WORD.findall(text.lower()) if w in APPROACH_WORDS}
    return found.pop() if len(found) == 1 else None


class PcsSpecificity:
    """The ICD-10-PCS codes of a store (``concepts``: any concepts; only ICD10PCS ones are read) and the rules."""

    def __init__(self, concepts: Iterable[IcdConcept]):
        self._codes: set[str] = set()
        self._under: dict[str, list[str]] = defaultdict(list)
        for concept in concepts:
            if concept.vocabulary_id == VOCABULARY_ID:
                self._codes.add(concept.concept_code)
        for code in sorted(self._codes):
            if len(code) == 7:
                self._under[code[:3]].append(code)
                self._under[code[:4]].append(code)
        if not self._codes:
            raise ValueError("no ICD10PCS concepts given: load the source icd10pcs (or an Athena export with "
                             "ICD10PCS) first")

    def is_valid(self, code: str) -> bool:
        return code in self._codes

    def is_billable(self, code: str) -> bool:
        """A code a coder writes: 7 characters (a prefix is a table row, not a code)."""
        return len(code) == 7 and code in self._codes

    def complete(self, code: str, mention: str = "") -> tuple[str, str | None]:
        """``(code, flag)``: a 7-character code as it is (flag None); a prefix completed by the rules (flag
        :data:`COMPLETED`) or kept (flag :data:`CATEGORY`). ``mention``: the text that named the procedure."""
        if len(code) == 7:
            return code, None
        under = self._under.get(code, [])
        if len(under) == 1:
            return under[0], COMPLETED
        approach = approach_of(mention) if len(code) == 4 else None
        if approach is not None:
            chosen = [c for c in under if c[4] == approach and c[5:] == "ZZ"]
            if len(chosen) == 1:
                return chosen[0], COMPLETED
        return code, CATEGORY
