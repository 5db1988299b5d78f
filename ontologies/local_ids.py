"""Deterministic local OMOP concept ids (>= 2,000,000,000) for concepts without an Athena id.

OMOP reserves ids from 2,000,000,000 for site-local concepts and ``concept_id`` is a 32-bit integer,
so the usable range is [2,000,000,000, 2,147,483,647]: about 147 M slots. A hash of
(vocabulary_id, concept_code) picks the slot, so the same code gets the same id on every build.
With ~150 k concepts some hashes collide (birthday bound), so collisions are resolved by re-hashing
with a counter, visiting keys in sorted order: the result depends only on the set of keys, never on
the order loaders produced them. Ids already taken by real concepts (a user's Athena export may hold
its own 2-billion ids) are never reused.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

LOCAL_ID_MIN = 2_000_000_000
LOCAL_ID_MAX = 2_147_483_647
_SPAN = LOCAL_ID_MAX - LOCAL_ID_MIN + 1


class LocalIdCollisionError(RuntimeError):
    """Raised when no free local id can be found for a key (practically impossible below ~100 M keys)."""


def _slot(vocabulary_id: str, concept_code: str, attempt: int) -> int:
    text = f"{vocabulary_id}\x1f{concept_code}\x1f{attempt}".encode()
    digest = hashlib.sha256(text).digest()
    return LOCAL_ID_MIN + int.from_bytes(digest[:8], "big") % _SPAN


def assign_local_ids(
    keys: Iterable[tuple[str, str]], taken: Iterable[int] = (), max_attempts: int = 64
) -> dict[tuple[str, str], int]:
    """Return ``{(vocabulary_id, concept_code): local_id}`` for every distinct key.

    ``taken`` are ids already used by real concepts; they are never handed out.
    """
    used = {int(i) for i in taken}
    assigned: dict[tuple[str, str], int] = {}
    for vocabulary_id, code in sorted(set(keys)):
        for attempt in range(max_attempts):
            candidate = _slot(vocabulary_id, code, attempt)
            if candidate not in used:
                used.add(candidate)
                assigned[(vocabulary_id, code)] = candidate
                break
        else:
            raise LocalIdCollisionError(
                f"no free local concept id for {vocabulary_id}:{code} after {max_attempts} attempts"
            )
    return assigned
