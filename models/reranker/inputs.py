"""What the context-reading cross-encoder reads: the mention marked inside its context, and a candidate.

One definition for training, export checks and run time, so the token ids torch learned from are the ids
onnxruntime sees:

    [CLS] left context [unused0] mention [unused1] right context [SEP] candidate name ; domain [SEP]

- The context is a character window around the mention (``CONTEXT_CHARS`` each side, cut at a word boundary,
  never inside the mention), with every run of whitespace (CRLF, tabs, newlines) read as one space. Offsets are
  Python code points, as spaCy's and the shared data's are, so multi-byte characters cost nothing special.
- The markers are BERT's reserved tokens ``[unused0]``/``[unused1]`` (ids 1 and 2 of the uncased vocabulary),
  inserted as ids, never as text: no note can spell them (nor any other special token: text is lower-cased before
  the tokenizer sees it), and no embedding row is added to the base model.
- Each part has its own token budget (``TokenBudget``): the left context keeps its last tokens, the right context
  and the mention their first ones, so truncation can never cut the markers or the mention out, however long the
  sentence.
- The candidate side is the name the retrieval matched plus the concept's OMOP domain ("condition", "drug", …):
  the training dictionaries (CTD MEDIC, MeSH) carry no vocabulary ids the run-time store uses (ICD10CM, HPO),
  but they do separate diseases from chemicals, which is what the context can confirm.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

#: Characters of context read on each side of the mention (before the token budget trims it).
CONTEXT_CHARS = 100
#: BERT uncased ids of [CLS], [SEP], [unused0] (mention start) and [unused1] (mention end).
CLS_ID, SEP_ID, START_ID, END_ID = 101, 102, 1, 2

#: Domain of the concepts of each names TSV the reranker was trained and is evaluated on: those files carry no
#: domain column. A concept listed in several takes the first listed file's (MEDIC before MeSH: a MeSH disease
#: descriptor is a condition); a MeSH descriptor outside MEDIC is read as a drug (BC5CDR's other entity type).
NAMES_TSV_DOMAINS = {"ctd_medic_names.tsv": "condition", "hpo_names.tsv": "condition",
                     "mesh_descriptor_labels.tsv": "drug"}

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class MentionContext:
    """A mention and the text around it, whitespace collapsed (the cross-encoder's query side)."""

    left: str
    mention: str
    right: str

    @classmethod
    def bare(cls, mention: str) -> "MentionContext":
        """A mention without context (dictionary synonyms in training, a pair file without documents)."""
        return cls("", _collapse(mention), "")


@dataclass(frozen=True)
class TokenBudget:
    """Tokens kept per part; the defaults give at most 72 tokens, ~40 for a typical mention and name."""

    left: int = 16
    mention: int = 12
    right: int = 16
    candidate: int = 20

    def to_json(self) -> dict:
        return {"left": self.left, "mention": self.mention, "right": self.right, "candidate": self.candidate}


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def mention_context(text: str, start: int, end: int, chars: int = CONTEXT_CHARS) -> MentionContext:
    """The mention ``text[start:end]`` with up to ``chars`` characters each side, cut at word boundaries.

    A window edge that falls inside a word moves to the next whitespace towards the mention, so no half word
    is read; the document's start and end are windows edges like any other.
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"mention offsets {start}:{end} are outside a text of {len(text)} characters")
    lo = max(0, start - chars)
    if lo > 0 and not text[lo - 1].isspace():
        cut = re.search(r"\s", text[lo:start])
        lo = lo + cut.end() if cut else start
    hi = min(len(text), end + chars)
    if hi < len(text) and not text[hi].isspace():
        cut = [m.start() for m in re.finditer(r"\s", text[end:hi])]
        hi = end + cut[-1] if cut else end
    return MentionContext(_collapse(text[lo:start]), _collapse(text[start:end]), _collapse(text[end:hi]))


def candidate_text(name: str, domain: str = "") -> str:
    """The candidate side: its matched name, then its domain in lower case (omitted when unknown)."""
    name = _collapse(name)
    return f"{name} ; {domain.lower()}" if domain else name


class PairEncoder:
    """Token ids of (context, candidate) pairs under a :class:`TokenBudget`, padded into int64 arrays."""

    def __init__(self, tokenizer: Tokenizer, budget: TokenBudget = TokenBudget()):
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.budget = budget

    @classmethod
    def from_file(cls, path: str, budget: TokenBudget = TokenBudget()) -> "PairEncoder":
        return cls(Tokenizer.from_file(path), budget)

    def _pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of ``texts``, lower-cased first: the tokenizer matches its added tokens ("[SEP]",
        "[PAD]", ...) in the raw text before its uncased normaliser runs, so a note spelling one would inject it;
        "[sep]" is read as the three pieces it is. Ordinary text gets the same ids either way."""
        return [e.ids for e in self.tokenizer.encode_batch([t.lower() for t in texts], add_special_tokens=False)]

    def query_ids(self, contexts: Sequence[MentionContext]) -> list[list[int]]:
        """``[CLS] left [unused0] mention [unused1] right [SEP]`` per context."""
        b = self.budget
        lefts = self._pieces([c.left for c in contexts])
        mentions = self._pieces([c.mention for c in contexts])
        rights = self._pieces([c.right for c in contexts])
        return [[CLS_ID] + (lft[-b.left:] if b.left else []) + [START_ID] + men[: b.mention] + [END_ID]
                + rgt[: b.right] + [SEP_ID] for lft, men, rgt in zip(lefts, mentions, rights)]

    def candidate_ids(self, candidates: Sequence[str]) -> list[list[int]]:
        """``candidate [SEP]`` per candidate text."""
        return [ids[: self.budget.candidate] + [SEP_ID] for ids in self._pieces(candidates)]

    @staticmethod
    def assemble(queries: Sequence[list[int]], candidates: Sequence[list[int]]) -> dict[str, np.ndarray]:
        """Padded ``input_ids``/``attention_mask``/``token_type_ids`` of query i paired with candidate i."""
        width = max(len(q) + len(c) for q, c in zip(queries, candidates))
        ids = np.zeros((len(queries), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, (q, c) in enumerate(zip(queries, candidates)):
            n = len(q) + len(c)
            ids[row, :n] = q + c
            mask[row, :n] = 1
            types[row, len(q):n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def encode(self, contexts: Sequence[MentionContext], candidates: Sequence[str]) -> dict[str, np.ndarray]:
        """The model inputs of pair i = (contexts[i], candidates[i])."""
        if len(contexts) != len(candidates):
            raise ValueError(f"{len(contexts)} contexts for {len(candidates)} candidates")
        return self.assemble(self.query_ids(contexts), self.candidate_ids(candidates))
