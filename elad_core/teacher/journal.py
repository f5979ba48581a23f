"""The reply journal: every teacher reply paid for, on disk before it is used (docs/design.md §3).

A store: `ReplyJournal` (and `GroupCommit`, its grouped fsyncs). The wrapper that consults
it around any teacher backend is `wrappers.Journaled`, composed by the TeacherClient façade;
the batch backend writes the rows of a provider batch to it itself.

A CLEAR dialogue is several calls; when turn 3 fails transiently, or the process is killed in
the middle of a batch, the retry replays the dialogue from the start. The journal makes that
free: before sending, the client looks the request up (key: sha256 of the model, sampling
settings and messages), and a hit returns the recorded reply and its recorded usage without
a request. So a resumed dialogue pays each completion once, and its Annotation (tokens, cost,
request count) equals the one an uninterrupted run would have written.

Format: append-only JSON lines `{"key", "text", "prompt_tokens", "completion_tokens",
"cost_usd"}`, each flushed and fsync'd before the reply is used; a line torn by a kill is
ignored on load. No request content and no credentials are stored, only the reply and usage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def request_key(model: str, messages: list[dict], temperature: float, max_tokens: int) -> str:
    """sha256 hex of what decides a reply: model string, sampling settings, messages.

    The endpoint (api_base) and the key are not part of it: the oracle's port changes per run.
    """
    blob = json.dumps({"model": model, "temperature": temperature, "max_tokens": max_tokens,
                       "messages": messages}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ReplyJournal:
    """Append-only, fsync'd store of paid replies, keyed by `request_key` (thread-safe).

    `get(key)` -> the recorded reply fields or None; `put(key, reply)` appends one line.
    `hits` counts replies served from the journal by this object.
    """

    FIELDS = ("text", "prompt_tokens", "completion_tokens", "cost_usd")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.hits = 0
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._torn_tail = False  # the file ends inside a line (a write killed half-way)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._load()

    def _load(self) -> None:
        torn = 0
        with self.path.open("rb") as fh:
            for raw in fh:
                self._torn_tail = not raw.endswith(b"\n")
                try:
                    row = json.loads(raw.decode("utf-8"))
                    self._entries[row["key"]] = {f: row[f] for f in self.FIELDS}
                except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                    torn += 1
        if torn:
            logger.warning("%s: ignored %d torn journal line(s) (a killed write)", self.path, torn)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self.hits += 1
            return entry

    def holds(self, key: str) -> bool:
        """Whether a reply for `key` is recorded (not counted as a hit)."""
        with self._lock:
            return key in self._entries

    def put(self, key: str, reply: dict[str, Any]) -> None:
        """Record a paid reply: one JSON line, flushed and fsync'd before returning."""
        self.put_many([(key, reply)])

    def put_many(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        """Record several paid replies, one JSON line each, with ONE fsync before returning
        (group commit: concurrent requests share the disk flush; fsync costs ~4 ms here)."""
        entries = [(key, {f: reply[f] for f in self.FIELDS}) for key, reply in replies]
        # one line per write(): O_APPEND writes stay whole when worker processes share the file
        lines = [(json.dumps({"key": key, **entry}, ensure_ascii=False) + "\n").encode("utf-8")
                 for key, entry in entries]
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab", buffering=0) as fh:
                if self._torn_tail:  # keep the torn line alone on its line
                    fh.write(b"\n")
                    self._torn_tail = False
                for line in lines:
                    fh.write(line)
                os.fsync(fh.fileno())
            self._entries.update(entries)


class GroupCommit:
    """Journals the replies of one event loop's concurrent requests in groups: each group is
    written with one fsync (`ReplyJournal.put_many`) in a worker thread; `put` returns once
    its own line is on disk. Same durability as one fsync per reply, without serialising
    replies behind the disk (~4 ms per fsync here) or blocking the loop while it flushes."""

    def __init__(self, journal: ReplyJournal):
        self.journal = journal
        self._pending: list[tuple[str, dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def put(self, key: str, reply: dict) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((key, reply, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)  # a cancelled caller leaves its line to be written

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.journal.put_many, [(k, r) for k, r, _ in group])
            except Exception as exc:  # noqa: BLE001 - handed to every waiter of the group
                for *_, done in group:
                    done.done() or done.set_exception(exc)
            else:
                for *_, done in group:
                    done.done() or done.set_result(None)
