"""Batches without padding: what keeps a model's output for one text independent of the texts batched with it."""
from __future__ import annotations

from collections.abc import Sequence


def equal_length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size`` items of one length each (shortest first, input order
    within a length): batches that need no padding, so no item's result depends on its batch mates."""
    groups: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        groups.setdefault(length, []).append(i)
    return [members[start : start + batch_size] for _, members in sorted(groups.items())
            for start in range(0, len(members), batch_size)]
