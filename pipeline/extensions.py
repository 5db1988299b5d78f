"""Doc/Span extensions every clin-linker component reads or writes (DESIGN §2 "Coded span").

Registered idempotently on import so that any component module can rely on them.
"""
from __future__ import annotations

from spacy.tokens import Doc, Span

#: ConText-style assertion flags (medspaCy names); False until a context component sets them.
CONTEXT_FLAGS = ("is_negated", "is_uncertain", "is_historical", "is_family", "is_hypothetical")

_SPAN_DEFAULTS: dict[str, object] = {
    "candidates": None,  # list[tuple[concept_key, score]], best first; None = not linked yet
    "concept": None,  # chosen concept_key, or None (NIL)
    "score": None,  # score of the chosen concept (or of the best candidate when NIL)
    # best candidate per target vocabulary, {vocabulary_id: (concept_key, score)}, when the linker has targets
    # (its first target's entry is span._.candidates[0], NIL or not); None = linked without targets
    "codes": None,
    # candidates of the mention read with its words around it ("CT" -> "Abdominal CT of the pelvis"), first target's
    # vocabulary, best first; only when the linker's window_k > 0 (the ICD-10-PCS coder reads them)
    "window_candidates": None,
    "section": None,  # section title the span is in
    "detector": None,  # which component found the mention ("dictionary", "ner", "functioning")
    # a functioning statement's {"assistance", "device", "distance"} (pipeline/functioning.py); None otherwise
    "functioning": None,
    **{flag: False for flag in CONTEXT_FLAGS},
}


def register_extensions() -> None:
    for name, default in _SPAN_DEFAULTS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
    if not Doc.has_extension("note_id"):
        Doc.set_extension("note_id", default=None)


register_extensions()
