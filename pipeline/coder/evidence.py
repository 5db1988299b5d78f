"""What a document coder hands back: a note's codes, each with its score and the mentions behind it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    """One mention behind a code: character offsets into the note, its text, label, retrieval rank and score, and
    the assertion flags set on it (``("is_historical",)``)."""

    start: int
    end: int
    text: str
    label: str
    rank: int  # 0 = the mention's best candidate of the vocabulary; -1 when the lexicon proposed the code
    score: float  # the candidate's retrieval score (1.0 = a verbatim vocabulary name), or the lexicon's share
    flags: tuple[str, ...]
    #: "retrieval" (the linker's candidates), "window" (the linker's candidates of the mention read with its words
    #: around it), "lexicon" (the site's habit for the mention's text or retrieved code) or "words" (the site's habit
    #: for a word of the note; then ``label`` is "")
    source: str = "retrieval"


@dataclass(frozen=True)
class DocumentCode:
    """One code of a note.

    ``score``: the coder's score (the model's probability, or the zero-shot score), the ranking key.
    ``accepted``: the coder's decision (score at or above its threshold). Ranked lists keep the codes below it, best
    first, for a coder to review; ``clin-linker code`` writes accepted codes unless asked for all.
    ``modifiers``: the specificity flag when the code is a category no rule could complete, or one a rule completed
    (``ontologies.icd10cm_specificity``), for NOTE_NLP.term_modifiers.
    """

    concept_key: str
    score: float
    accepted: bool
    evidence: tuple[Evidence, ...]
    modifiers: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The vocabulary's own code ("I10"): the key after the vocabulary prefix."""
        return self.concept_key.split(":", 1)[1]

    def as_json(self) -> dict:
        """The JSON object ``clin-linker code`` writes per code."""
        return {"code": self.code, "concept_key": self.concept_key, "score": round(self.score, 4),
                "accepted": self.accepted, "modifiers": list(self.modifiers),
                "evidence": [{"start": e.start, "end": e.end, "text": e.text, "label": e.label, "rank": e.rank,
                              "score": round(e.score, 4), "flags": list(e.flags), "source": e.source} for e in self.evidence]}
