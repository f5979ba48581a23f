"""Wall seconds per named step of a round (reported in each round's manifest.json)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class StepTimer:
    """`with timer("train"): ...` adds the block's wall seconds to `wall_s["train"]`."""

    def __init__(self) -> None:
        self.wall_s: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.wall_s[name] = self.wall_s.get(name, 0.0) + time.perf_counter() - t0
