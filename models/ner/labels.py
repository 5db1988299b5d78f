"""The NER label set, its BIO tags, and the rule that flattens nested annotations.

Torch-free: the run time and the metrics import it too.

Why BIO and not BILOU: with a softmax over tags per sub-word token (no CRF), BIO has 13 classes
instead of 25, so each class sees twice the examples — that matters for the rare labels (DEVICE has
~300 training mentions). BILOU's extra boundary classes mainly help CRF decoders; ours decodes
greedily and repairs ill-formed sequences (see ``windows.decode_spans``).
"""
from __future__ import annotations

from collections.abc import Iterable

#: The OMOP-domain labels the tagger predicts. The order is also the tie-break priority (first
#: wins) when one character span carries two labels, see ``resolve_nesting``. CONDITION comes
#: first because the same-span pairs in the corpora are mostly a MACCROBAT disease/sign that is
#: also tagged History (CONDITION + OBSERVATION) or a Chia condition that is also a Measurement:
#: the condition reading is the one the linker can code, while "historical" is a ConText
#: modifier downstream. Then the labels in decreasing order of how specific their concepts are.
LABELS: tuple[str, ...] = ("CONDITION", "DRUG", "PROCEDURE", "MEASUREMENT", "OBSERVATION", "DEVICE")

#: The corpus labels the tagger does not learn: VISIT is too rare (125 train mentions),
#: VALUE and TEMPORAL are attributes of other mentions, not codable concepts.
DROPPED_LABELS: tuple[str, ...] = ("VISIT", "VALUE", "TEMPORAL")

OUTSIDE = "O"

#: Tag ids: 0 = O, then B-/I- pairs in ``LABELS`` order (B-X = 1 + 2*i, I-X = 2 + 2*i).
TAGS: tuple[str, ...] = (OUTSIDE,) + tuple(f"{p}-{lab}" for lab in LABELS for p in ("B", "I"))
TAG_TO_ID: dict[str, int] = {t: i for i, t in enumerate(TAGS)}

_PRIORITY = {lab: i for i, lab in enumerate(LABELS)}

Span = tuple[int, int, str]


def begin_id(label: str) -> int:
    """Tag id of ``B-label``."""
    return 1 + 2 * _PRIORITY[label]


def inside_id(label: str) -> int:
    """Tag id of ``I-label``."""
    return 2 + 2 * _PRIORITY[label]


def tag_label(tag_id: int) -> str | None:
    """The label of a tag id, ``None`` for O."""
    return None if tag_id == 0 else LABELS[(tag_id - 1) // 2]


def is_begin(tag_id: int) -> bool:
    """True for a ``B-`` tag id."""
    return tag_id > 0 and tag_id % 2 == 1


def resolve_nesting(spans: Iterable[Span]) -> list[Span]:
    """Flatten annotations so a BIO sequence can represent them: keep the longest span.

    Greedy: spans are taken longest first; a span overlapping one already kept is dropped. When
    two spans cover exactly the same characters, the label earlier in ``LABELS`` wins. Spans with
    labels outside ``LABELS`` are ignored. Returns the kept spans sorted by position.

    Longest-first because the corpora nest a short mention inside its full phrase ("cancer"
    inside "squamous cell skin cancer"); the full phrase is what the linker should code.
    """
    candidates = sorted(
        {s for s in spans if s[2] in _PRIORITY and s[1] > s[0]},
        key=lambda s: (-(s[1] - s[0]), _PRIORITY[s[2]], s[0]),
    )
    kept: list[Span] = []
    for start, end, label in candidates:
        if all(end <= k_start or start >= k_end for k_start, k_end, _ in kept):
            kept.append((start, end, label))
    return sorted(kept)
