"""Seeded fault injection for the oracle teacher server (docs/design.md §2.4; a TEST DOUBLE).

Each request gets at most one fault, decided from (seed, sha256 of its messages, how many
times those exact messages were asked before) — so the fault a request meets does not depend
on the order concurrent requests arrive in, and a retry of the same turn draws afresh. Kinds:

| kind | what the client sees | client's class |
|---|---|---|
| `error` | HTTP 500 | transient |
| `rate_limit` | HTTP 429 with `Retry-After: retry_after_s` | transient |
| `timeout` | nothing until it gives up (held `hang_s`, then 504) | transient |
| `drop` | status line and headers, then the connection closes mid-body | transient |
| `malformed` | HTTP 200 whose body is truncated JSON | transient |
| `unparsable` | HTTP 200, a completion whose text answers nothing | status `unparsable` |
| `bad_request` | HTTP 400 | permanent: that question is recorded as `failed` |
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

FAULT_KINDS = ("error", "rate_limit", "timeout", "drop", "malformed", "unparsable",
               "bad_request")
# the text an `unparsable` fault puts in a well-formed completion: no verdict, no `####`
UNPARSABLE_TEXT = "I am not able to help with that right now."


@dataclass
class FaultConfig:
    """Per-request fault probabilities in [0, 1] (their sum at most 1); times in seconds.

    latency_s: added to every request. retry_after_s: the 429's `Retry-After`. hang_s: how
    long a `timeout` fault holds the request (or until the client disconnects). The batch_*
    fields shape the batch API only; chat requests never see them.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    unparsable_rate: float = 0.0
    bad_request_rate: float = 0.0
    retry_after_s: float = 1.0
    hang_s: float = 30.0
    seed: int = 0
    # the batch API (elad_core/teacher/oracle/batches.py): delay until a batch is done, the
    # share of its rows answered with an error line, how it ends ("completed" / "expired" /
    # "failed")
    batch_delay_s: float = 0.0
    batch_row_fail_rate: float = 0.0
    batch_end: str = "completed"

    def __post_init__(self) -> None:
        rates = self.rates()
        if any(not 0.0 <= r <= 1.0 for r in rates.values()) or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must each be in [0, 1] and sum to at most 1: {rates}")

    def rates(self) -> dict[str, float]:
        """{fault kind: probability}, in FAULT_KINDS order."""
        return {kind: getattr(self, f"{kind}_rate") for kind in FAULT_KINDS}


def messages_sha(messages: list) -> str:
    """sha256 of the canonical JSON of a chat request's messages (the request log's key)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).hexdigest()


class FaultInjector:
    """Decides each request's fault; thread-safe. `draw(sha)` -> a FAULT_KINDS entry or None."""

    def __init__(self, cfg: FaultConfig):
        self.cfg = cfg
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def draw(self, sha: str) -> str | None:
        with self._lock:
            attempt = self._seen.get(sha, 0)
            self._seen[sha] = attempt + 1
        digest = hashlib.sha256(f"{self.cfg.seed}:{sha}:{attempt}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        edge = 0.0
        for kind, rate in self.cfg.rates().items():
            edge += rate
            if u < edge:
                return kind
        return None


class DroppedResponse(Response):
    """A response that sends 200 + headers and half its body, then lets the server close the
    connection (the client reads a dropped connection, as when a proxy or peer dies)."""

    def __init__(self, body: bytes):
        super().__init__(body, 200, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                    "more_body": True})


class _QuietDrops(logging.Filter):
    """uvicorn logs an error for each response left incomplete: noise for injected drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def silence_drop_errors() -> None:
    """Install the filter on uvicorn's error logger (idempotent)."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in log.filters):
        log.addFilter(_QuietDrops())
