"""Seeds and seeded draws shared by both methods (docs/design.md §3).

Every random step derives its own seed by hashing (run seed, purpose, round, shard ...), so
no two steps of a run, and no two runs with different seeds, share a stream by accident
(a sum like `seed*7 + round` gives seed 0 round 7 and seed 1 round 0 the same stream).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def derive_seed(seed: int, purpose: str, *parts: int | str) -> int:
    """A seed in [0, 2**31) for one random step: sha256 of the run `seed`, the step's
    `purpose` (e.g. "sample", "select", "replay") and its coordinates (round, shard, ...).
    Distinct inputs give independent seeds; the same inputs always give the same seed."""
    key = "\x1f".join(str(x) for x in (seed, purpose, *parts))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") >> 1


def seeded_subset(items: Sequence[T], size: int | None, seed: int) -> list[T]:
    """`size` items drawn with `seed`, in their original order; all when size is None or at
    least len(items). The pool / eval subsets of ELAD and EvoKD's eval / reserve subsets."""
    if size is None or size >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:size])
    return [items[i] for i in keep]
