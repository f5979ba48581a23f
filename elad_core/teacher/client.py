"""The façade: `TeacherClient`, the one object annotators, EvoKD and tasks call (docs/design.md
§2.3, §3): `await client.chat(messages, max_tokens=None) -> TeacherReply`.

It holds no request logic of its own: it composes, from one `ClientSettings`
(elad_core/teacher/settings.py), a backend and the wrappers around it (issue #23):

    Journaled( Cached( BatchBackend( fallback=Limited(LitellmBackend) ) ) )

- backends: `LitellmBackend` (one synchronous request through litellm: any provider, and the
  offline oracle on a loopback api_base) and, with `mode="batch"`, `BatchBackend` (provider
  batches at batch price, the synchronous path for what a batch did not answer);
- wrappers (elad_core/teacher/wrappers.py): `Limited` (max_concurrency, the `throttle` of
  client-side rate limits; synchronous requests only), `Cached` (the reply cache shared across
  runs; temperature 0 only), `Journaled` (the reply journal: a reply paid for is never paid
  again);
- prices: `TeacherPrices` (elad_core/teacher/pricing.py), the one place prices, the
  oracle's simulated ones included, are applied.

Per-call CPU (issue #7, `benchmarks/throughput.py`): replies of concurrent requests are
journaled in groups, one fsync per group in a worker thread, so the event loop never waits
on the disk; the oracle's simulated prices are registered with litellm once, so litellm's own
per-call cost lookup hits its price map.

A worker process gets `worker_settings(...)` (the key resolved) and builds its own client
with `TeacherClient(settings=...)` (elad_core/elad/fanout.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from elad_core.teacher.batch import BatchBackend
from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.journal import ReplyJournal
from elad_core.teacher.litellm_backend import LitellmBackend
from elad_core.teacher.pricing import ORACLE_SIMULATED_PRICES, TeacherPrices
from elad_core.teacher.protocol import Teacher, TeacherReply
from elad_core.teacher.reply_cache import ReplyCache
from elad_core.teacher.settings import ORACLE_MODEL, SETTING_NAMES, ClientSettings
from elad_core.teacher.wrappers import Cached, Journaled, Limited

__all__ = ["ORACLE_MODEL", "ORACLE_SIMULATED_PRICES", "ClientSettings", "Teacher",
           "TeacherClient", "TeacherReply"]


class TeacherClient:
    """Async chat client for one teacher model: a backend and its wrappers (module docstring).

    Settings: either `settings` (a ClientSettings) or its fields as keyword arguments,
    `TeacherClient("openai/oracle", api_base=..., max_concurrency=4)` (see ClientSettings for
    each); they read as the client's attributes (`client.model`, `client.max_concurrency`).
    Runtime resources beside them: journal (a ReplyJournal: replies already paid for are
    served from it, new ones recorded in it), throttle (awaited with the request's token
    occupancy, prompt + max_tokens, before each synchronous request is sent), reply_cache (a
    ReplyCache or its folder, shared across runs, used at temperature 0 only; default: the
    settings' folder). `requests_sent` counts every request attempted, `replayed` those served
    by the journal, `reused` those served by the reply cache (worker processes included).
    """

    def __init__(self, model: str | None = None, *, settings: ClientSettings | None = None,
                 journal: ReplyJournal | None = None,
                 throttle: Callable[[int], Awaitable[None]] | None = None,
                 reply_cache: ReplyCache | str | Path | None = None, **fields: Any):
        if (settings is None) == (model is None) or (settings is not None and fields):
            raise TypeError("TeacherClient: give a model and settings fields, or settings")
        if settings is None:
            settings = ClientSettings(model=model, **fields)
        if reply_cache is not None:  # the folder, for worker processes' clients
            root = reply_cache.root if isinstance(reply_cache, ReplyCache) else reply_cache
            settings = replace(settings, reply_cache=str(root))
        self.settings, self.journal, self.throttle = settings, journal, throttle
        self.prices = TeacherPrices(settings)
        cache = reply_cache if reply_cache is not None else settings.reply_cache
        # replies paid by another run (teacher.reply_cache, temperature 0 only)
        self.reply_cache = ((ReplyCache(cache) if isinstance(cache, (str, Path)) else cache)
                            if settings.temperature == 0 else None)
        self._sync = LitellmBackend(settings, self.prices)
        teacher: Teacher = Limited(self._sync, settings, throttle, self.prices.count_prompt_tokens)
        self._batch = (BatchBackend(settings, self.prices, journal, fallback=teacher)
                       if settings.mode == "batch" else None)
        teacher = self._batch if self._batch is not None else teacher
        self._cached = (Cached(teacher, self.reply_cache, settings)
                        if self.reply_cache is not None else None)
        teacher = self._cached if self._cached is not None else teacher
        # (`is not None`: an empty ReplyJournal is falsy)
        self._teacher: Teacher = (Journaled(teacher, journal, settings)
                                  if journal is not None else teacher)
        self._elsewhere = {"sent": 0, "replayed": 0, "reused": 0}  # worker processes'

    @classmethod
    def from_config(cls, cfg: TeacherConfig, api_base: str | None, *, api_key: str | None = None,
                    journal: ReplyJournal | None = None,
                    throttle: Callable[[int], Awaitable[None]] | None = None) -> TeacherClient:
        """Client for `cfg`; for model "oracle", `api_base` is the running oracle server's.

        api_key: the resolved key of `cfg.api_key_secret` (the caller resolves the block).
        """
        return cls(settings=ClientSettings.from_config(cfg, api_base, api_key=api_key),
                   journal=journal, throttle=throttle)

    def worker_settings(self, **overrides: Any) -> ClientSettings:
        """The settings of an equivalent client for a worker process (build it with
        `TeacherClient(settings=...)`; no journal or throttle; the key resolved, so the
        worker needs no environment or Prefect block); `overrides`: fields to change."""
        return self.settings.for_worker(**overrides)

    def __getattr__(self, name: str) -> Any:
        """A settings field read as the client's attribute (client.model, client.mode, ...)."""
        settings = self.__dict__.get("settings")
        if settings is not None and name in SETTING_NAMES:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        """One chat request -> the reply text, token usage and cost.

        max_tokens: this request's completion limit (None: the client's `max_tokens`); it is
        part of the journal and reply-cache keys and sets the request's timeout
        (request_timeout_s). A request with its own limit is not put into a provider batch
        (batch mode): it is sent synchronously.

        A request already in the journal is answered from it (no request, the recorded
        usage); a new reply is journaled before it is returned. In batch mode it is first
        queued into a provider batch (elad_core/teacher/batch.py). Raises TransientTeacherError
        (429 with `retry_after_s`, 5xx, connection errors, timeouts, unreadable bodies) or
        PermanentTeacherError (400/401/403/404/422, with the server's message).
        """
        return await self._teacher.chat(messages, max_tokens)

    @property
    def requests_sent(self) -> int:
        """Requests attempted: synchronous ones, those submitted in provider batches, and
        those of worker processes."""
        batched = self._batch.requests_sent if self._batch is not None else 0
        return self._sync.requests_sent + batched + self._elsewhere["sent"]

    @property
    def replayed(self) -> int:
        """Replies served from the journal instead of a request (worker processes included)."""
        return (self.journal.hits if self.journal is not None else 0) + self._elsewhere["replayed"]

    @property
    def reused(self) -> int:
        """Replies served from the reply cache (worker processes included)."""
        return (self._cached.reused if self._cached is not None else 0) + self._elsewhere["reused"]

    def add_counts(self, requests_sent: int, replayed: int, reused: int = 0) -> None:
        """Count requests sent, journal replays and reply-cache reuses made for this client by
        worker processes."""
        self._elsewhere["sent"] += requests_sent
        self._elsewhere["replayed"] += replayed
        self._elsewhere["reused"] += reused

    def request_timeout_s(self, max_tokens: int | None = None) -> float:
        """Seconds one request asking for `max_tokens` completion tokens may take
        (ClientSettings.request_timeout_s)."""
        return self.settings.request_timeout_s(max_tokens)

    @property
    def endpoint(self) -> str:
        """Where requests go, for messages: the api_base, or the provider's default."""
        return self.settings.endpoint

    def count_prompt_tokens(self, messages: list[dict]) -> int:
        """Prompt tokens of `messages` by litellm's offline tokenizer for this model."""
        return self.prices.count_prompt_tokens(messages)

    def price_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for that usage at this client's prices (TeacherPrices.price_usd: times
        batch_price_ratio in batch mode, what budgets and estimates count with)."""
        return self.prices.price_usd(prompt_tokens, completion_tokens)
