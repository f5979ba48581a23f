"""Helpers shared by the benchmark scripts: the offline environment, result rows, statistics.

Import it first (it sets the offline environment before prefect, litellm or torch load, and
puts the checkout on sys.path so `flows`, `tasks` and `elad_core` import from a script).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import statistics
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


# ----------------------------------------------------------------- result rows (JSON lines)

def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON-lines results file ([] when missing); a torn last line is skipped."""
    from elad_core.files import read_json_lines

    return read_json_lines(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock (flock) on path + '.lock', held by one writer process at a time."""
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def append_row(path: Path, row: dict, key: Iterable[str]) -> bool:
    """Append `row` as one JSON line unless a row with the same values of `key` is there
    (processes may share the file: the check and the write happen under one lock).
    Returns whether it was written."""
    key = tuple(key)
    with _locked(path):
        want = tuple(row[k] for k in key)
        if any(tuple(r.get(k) for k in key) == want for r in read_rows(path)):
            return False
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return True


# ----------------------------------------------------------------------------- statistics

def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def t_interval(xs: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, low, high): the Student-t confidence interval of the mean of `xs`; None for
    fewer than two values."""
    if len(xs) < 2:
        return None
    from scipy.stats import t

    m, s = mean_std(xs)
    half = t.ppf(0.5 + level / 2, len(xs) - 1) * s / math.sqrt(len(xs))
    return m, m - half, m + half


def fmt_seconds(s: float) -> str:
    """12 s, 4.5 min, 2.3 h."""
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"
