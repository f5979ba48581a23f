"""The batch journal (`<reply journal stem>.batches.jsonl`): the provider batches a task
submitted, so a killed and restarted task polls them again instead of submitting twice
(docs/design.md §3.3). A store used by the batch backend (elad_core/teacher/batch.py).

Lines: {"batch_id", "input_file_id", "batch_key", "keys", "submitted_at"} when a batch was
submitted (appended, fsync'd, before any wait); {"batch_id", "final": state} once its
outcome was used. Torn lines are ignored on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any


class BatchJournal:
    """Append-only, fsync'd JSON lines of submitted batches (thread- and process-safe appends).

    Lines: {"batch_id", "input_file_id", "batch_key" (sha256 of its sorted request keys),
    "keys", "submitted_at" (Unix s)} when submitted; {"batch_id", "final": state} once its
    outcome was used. `path` None: nothing is kept (no resume). Torn lines are ignored.
    """

    def __init__(self, path: Path | None):
        self.path = Path(path) if path is not None else None
        self.batches: dict[str, dict[str, Any]] = {}
        self.final: dict[str, str] = {}
        self._by_key: dict[str, str] = {}
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            for raw in self.path.read_bytes().splitlines():
                try:
                    self._add(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    continue

    def _add(self, row: dict) -> None:
        if "final" in row:
            self.final[row["batch_id"]] = row["final"]
            return
        self.batches[row["batch_id"]] = row
        self._by_key.update(dict.fromkeys(row["keys"], row["batch_id"]))

    def batch_of(self, key: str) -> str | None:
        """The latest journaled batch holding request `key`, or None."""
        return self._by_key.get(key)

    def _append(self, row: dict) -> None:
        self._add(row)
        if self.path is None:
            return
        line = (json.dumps(row) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)  # one write(): whole lines when processes share the file
                os.fsync(fd)
            finally:
                os.close(fd)

    def submitted(self, batch_id: str, input_file_id: str, keys: list[str]) -> None:
        batch_key = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
        self._append({"batch_id": batch_id, "input_file_id": input_file_id,
                      "batch_key": batch_key, "keys": keys, "submitted_at": time.time()})

    def finished(self, batch_id: str, state: str) -> None:
        self._append({"batch_id": batch_id, "final": state})
