"""A teacher reply cache shared across runs (`teacher.reply_cache`, issue #15; docs/design.md §3.3).

A store: `ReplyCache`. The wrapper that consults it around any teacher backend (temperature-0
requests only) is `wrappers.Cached`, composed by the TeacherClient façade.

The reply journal (elad_core.teacher.journal) makes one run never pay twice; this cache does
the same across runs: a user who re-runs with another student setting, selector or seed asks
the teacher the same temperature-0 questions again, and those replies are already paid for.

Content-addressed: the key is the sha256 of everything that decides a reply (model string,
endpoint identity, messages, temperature, max tokens, seed); only temperature-0 requests are
looked up (a sampled reply is not the same reply twice). The endpoint identity is the
configured `api_base` (empty for a provider's default); for the offline oracle it is
"oracle", whose port changes per run. A reply served from the cache is not paid again:
no request is sent, and summary.json counts it (`teacher_replies_reused`). Its annotation
keeps the usage the reply was first paid at (as a journal replay does), so a round's teacher
tokens, the budgets and the benchmarks measure what a method's questions cost, whichever run
paid for them.
A change behind the same endpoint and model (a new model version under an old name) is not
seen: clear the folder, or use another, then.

Layout: <folder>/<key[:2]>/<key>.json with {"text", "prompt_tokens", "completion_tokens",
"cost_usd"} as first paid; written to a temporary file and renamed, so concurrent runs and a
killed writer never leave a torn entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from elad_core.teacher.settings import ORACLE_MODEL

FIELDS = ("text", "prompt_tokens", "completion_tokens", "cost_usd")


def cache_key(model: str, endpoint: str, messages: list[dict], temperature: float,
              max_tokens: int, seed: int | None = None) -> str:
    """sha256 hex of what decides a reply, endpoint identity included."""
    blob = json.dumps({"model": model, "endpoint": endpoint, "messages": messages,
                       "temperature": temperature, "max_tokens": max_tokens, "seed": seed},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ReplyCache:
    """The folder `root` as a content-addressed reply store (thread- and process-safe).

    `get(key)` -> the reply fields as first paid, or None; `put(key, reply)` stores one
    (an existing entry is kept). `hits` counts replies this object served.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.hits = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, api_base: str | None, messages: list[dict], temperature: float,
            max_tokens: int) -> str:
        """The cache key of `messages` sent to `model` at `api_base` (its endpoint identity:
        "oracle" for the oracle, whose port changes per run) with these sampling settings."""
        endpoint = "oracle" if model == ORACLE_MODEL else (api_base or "")
        return cache_key(model, endpoint, messages, temperature, max_tokens)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            row = json.loads(self._path(key).read_text(encoding="utf-8"))
            entry = {f: row[f] for f in FIELDS}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        with self._lock:
            self.hits += 1
        return entry

    def put(self, key: str, reply: dict[str, Any]) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({f: reply[f] for f in FIELDS}, fh, ensure_ascii=False)
        os.replace(tmp, path)
