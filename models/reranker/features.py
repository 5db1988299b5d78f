"""What the feature reranker reads about one (mention in context, candidate) pair: one definition for training and
run time.

Why features and trees rather than a CPU-trained transformer cross-encoder: two cross-encoders trained here (one on
a GPU, one for 43 min on 2 CPU cores, docs/reranking.md) could not beat the retriever they rerank, because a few
thousand train mentions teach a 22M-parameter model mostly which concepts are usually gold. The evidence a coder
uses to overrule a dense retriever is cheap to state directly, and a few hundred shallow trees learn its weights
from the same train documents in seconds:

- **retrieval**: the candidate's bi-encoder cosine, rank, gap to the best and to the next candidate, exact-name hit;
- **a second, general encoder** (the base all-MiniLM-L6-v2, which never saw the task): cosine of the mention to the
  candidate's name, so a concept the tuned retriever pulls up from memory but a general reader does not is doubted;
- **context**: cosine of the whole window (left context + mention + right context) to the candidate's name under
  the general encoder, and how many content words of the context the name repeats ("MS" next to "demyelinating");
- **spelling**: character-trigram and word overlap of mention and name, containment both ways, length ratio;
- **short forms**: the mention is a short upper-case form and the name's initials spell it;
- **domain**: the candidate's OMOP domain agrees, disagrees or is unknown against the mention's NER label (a DRUG
  mention retrieving a disease concept).

Every feature of a pair depends on that pair and its own candidate list only, and every text is embedded alone
(``TextVectors``), so a mention's features never depend on which notes shared its batch.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .inputs import MentionContext

#: Feature columns, in the order the tree model was trained on (``artifact.json`` repeats them; a mismatch is an
#: error at load time).
FEATURE_NAMES = (
    "cosine", "rank", "gap_to_best", "margin_to_next", "exact",
    "base_cosine", "base_rank", "base_gap_to_best",
    "context_cosine", "context_rank", "context_gap_to_best", "context_words_in_name",
    "char3_jaccard", "word_jaccard", "mention_in_name", "name_in_mention", "length_ratio", "mention_words",
    "short_form", "initials_match",
    "domain_agrees", "domain_known", "agreeing_candidates",
)

#: NER label -> the OMOP domain a right concept has (lower case, as the concept store's ``domain_id``).
LABEL_DOMAINS = {"CONDITION": "condition", "DRUG": "drug", "PROCEDURE": "procedure", "MEASUREMENT": "measurement",
                 "OBSERVATION": "observation", "DEVICE": "device"}

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SHORT_FORM = re.compile(r"^[A-Z0-9][A-Za-z0-9\-]{0,6}$")
_STOP = frozenset("a an and are as at be by for from in is it of on or the to with was were which this that "
                  "these those not no its their has have had been into than then".split())


@dataclass(frozen=True)
class CandidateView:
    """One retrieved candidate as the features read it."""

    name: str
    cosine: float
    exact: bool
    domain: str


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words."""
    return [w.lower() for w in _WORD.findall(text)]


def _char3(text: str) -> set[str]:
    s = f" {' '.join(words(text))} "
    return {s[i:i + 3] for i in range(len(s) - 2)}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _initials(name: str) -> str:
    return "".join(w[0] for w in words(name) if w not in _STOP)


def _singular(mention: str) -> str:
    """The mention without a plural "s" written after capitals ("NSAIDs" -> "NSAID")."""
    core = mention.strip()
    return core[:-1] if len(core) > 2 and core.endswith("s") and core[:-1].isupper() else core


def is_short_form(mention: str) -> bool:
    """An upper-case short form of at most 6 letters and digits ("MS", "CRF", "5-HT", "NSAIDs")."""
    core = _singular(mention)
    return bool(_SHORT_FORM.match(core)) and core.upper() == core and len("".join(words(core))) <= 6


def short_form_key(mention: str) -> str:
    """The letters a short form stands for, lower case: "NSAIDs" -> "nsaid", "MS" -> "ms"."""
    return "".join(words(_singular(mention)))


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 = the highest value (ties share the better rank's order by position)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    return ranks


class TextVectors:
    """Unit vectors of texts under one sentence encoder, each text embedded alone and memoised per process.

    One text per call: dynamic int8 quantisation scales activations over the whole call, so a batched text's
    vector would depend on its batch mates and the memo would make results depend on the order notes came in.
    """

    def __init__(self, encoder, memo_size: int = 200_000):
        self.encoder = encoder
        self.memo_size = memo_size
        self._memo: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        self._memo.clear()

    def __call__(self, text: str) -> np.ndarray:
        vector = self._memo.get(text)
        if vector is None:
            vector = self.encoder.encode([text])[0]
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            if len(self._memo) >= self.memo_size:
                self._memo.clear()
            self._memo[text] = vector
        return vector


def context_text(ctx: MentionContext) -> str:
    """The window the context cosine reads: left context, mention and right context, as one text."""
    return " ".join(part for part in (ctx.left, ctx.mention, ctx.right) if part)


def group_features(ctx: MentionContext, label: str, candidates: Sequence[CandidateView],
                   vectors: Callable[[str], np.ndarray]) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) float32 features of one mention's n candidates, in retrieval order.

    ``vectors``: unit vector of a text under the general encoder (a :class:`TextVectors`).
    """
    n = len(candidates)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    mention = ctx.mention
    m_vec, c_vec = vectors(mention.lower()), vectors(context_text(ctx).lower())
    name_vecs = np.stack([vectors(c.name.lower()) for c in candidates])
    cosine = np.array([c.cosine for c in candidates], dtype=np.float64)
    base = name_vecs @ m_vec
    context = name_vecs @ c_vec
    margin = np.r_[cosine[:-1] - cosine[1:], 0.0]
    m_words, m_char3 = set(words(mention)), _char3(mention)
    m_norm = " ".join(words(mention))
    ctx_words = {w for w in words(f"{ctx.left} {ctx.right}") if len(w) > 3 and w not in _STOP} - m_words
    short = is_short_form(mention)
    want = LABEL_DOMAINS.get((label or "").upper(), "")
    known = [bool(want and c.domain) for c in candidates]
    agrees = [k and c.domain.lower() == want for k, c in zip(known, candidates)]
    for j, c in enumerate(candidates):
        n_words, n_norm = set(words(c.name)), " ".join(words(c.name))
        initials = _initials(c.name)
        out[j] = (
            cosine[j], j, cosine[0] - cosine[j], margin[j], float(c.exact),
            base[j], 0.0, 0.0,
            context[j], 0.0, 0.0, len(ctx_words & n_words),
            _jaccard(m_char3, _char3(c.name)), _jaccard(m_words, n_words),
            float(bool(m_norm) and m_norm in n_norm), float(bool(n_norm) and n_norm in m_norm),
            len(n_norm) / max(len(m_norm), 1), len(m_words),
            float(short), float(short and bool(initials) and initials.startswith(short_form_key(mention))),
            float(agrees[j]), float(known[j]), float(sum(agrees)),
        )
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    out[:, col["base_rank"]] = _ranks(base)
    out[:, col["base_gap_to_best"]] = base.max() - base
    out[:, col["context_rank"]] = _ranks(context)
    out[:, col["context_gap_to_best"]] = context.max() - context
    return out
