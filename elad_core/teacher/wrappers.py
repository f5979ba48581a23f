"""Wrappers: one concern each, around any `Teacher` backend (composition, issue #23).

Each wrapper is itself a `Teacher` (`chat(messages, max_tokens=None)`) holding an inner one;
the TeacherClient façade (elad_core/teacher/client.py) stacks them, outermost first:

- `Journaled`: the reply journal (elad_core/teacher/journal.py). A request already paid for
  is answered from it (no request, its recorded usage); a new reply is on disk (fsync'd,
  grouped with concurrent replies: GroupCommit) before it is returned. A reply the inner
  teacher journaled itself (a provider batch's row) is not written twice.
- `Cached`: the reply cache shared across runs (elad_core/teacher/reply_cache.py), used at
  temperature 0 only (the façade leaves it out otherwise); a reply found there is not paid
  again (`reused`), a new one is stored.
- `Limited`: client-side concurrency (a semaphore of `max_concurrency` per event loop) and
  rate limits (`throttle`, awaited with the request's token occupancy, prompt + max_tokens,
  before it is sent); wraps the synchronous backend only (a provider batch is one request).

Keys: the journal's is `journal.request_key` (model, temperature, max_tokens, messages), the
cache's `ReplyCache.key` (the same plus the endpoint identity), both with this request's
max_tokens (the configured one when the call names none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from elad_core.teacher.journal import GroupCommit, ReplyJournal, request_key
from elad_core.teacher.protocol import Teacher, TeacherReply
from elad_core.teacher.reply_cache import ReplyCache
from elad_core.teacher.settings import ClientSettings


class Journaled:
    """`inner` behind the reply journal `journal` (see the module docstring)."""

    def __init__(self, inner: Teacher, journal: ReplyJournal, settings: ClientSettings):
        self.inner, self.journal, self.settings = inner, journal, settings
        self._commit: GroupCommit | None = None
        self._commit_loop: asyncio.AbstractEventLoop | None = None

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        s = self.settings
        key = request_key(s.model, messages, s.temperature,
                          s.max_tokens if max_tokens is None else max_tokens)
        if (entry := self.journal.get(key)) is not None:
            return TeacherReply(**entry)
        reply = await self.inner.chat(messages, max_tokens)
        if not self.journal.holds(key):  # a provider batch's rows are on disk already
            await self._group_commit().put(key, asdict(reply))
        return reply

    def _group_commit(self) -> GroupCommit:
        """The GroupCommit of the running event loop (its futures and flusher belong to it)."""
        loop = asyncio.get_running_loop()
        if self._commit is None or self._commit_loop is not loop:
            self._commit, self._commit_loop = GroupCommit(self.journal), loop
        return self._commit


class Cached:
    """`inner` behind the cross-run reply cache `cache`; `reused` counts replies served
    from it (see the module docstring)."""

    def __init__(self, inner: Teacher, cache: ReplyCache, settings: ClientSettings):
        self.inner, self.cache, self.settings = inner, cache, settings
        self.reused = 0

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        s = self.settings
        key = self.cache.key(s.model, s.api_base, messages, s.temperature,
                             s.max_tokens if max_tokens is None else max_tokens)
        if (entry := self.cache.get(key)) is not None:  # paid by another run
            self.reused += 1
            return TeacherReply(**entry)
        reply = await self.inner.chat(messages, max_tokens)
        self.cache.put(key, asdict(reply))
        return reply


class Limited:
    """`inner` with at most `settings.max_concurrency` requests in flight per event loop,
    each sent after `throttle(prompt tokens + max_tokens)` returns (None: no rate limit).

    count_prompt_tokens: messages -> prompt tokens (TeacherPrices.count_prompt_tokens).
    """

    def __init__(self, inner: Teacher, settings: ClientSettings,
                 throttle: Callable[[int], Awaitable[None]] | None,
                 count_prompt_tokens: Callable[[list[dict]], int]):
        self.inner, self.settings, self.throttle = inner, settings, throttle
        self.count_prompt_tokens = count_prompt_tokens
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        async with self._bounded():
            if self.throttle is not None:
                tokens = self.settings.max_tokens if max_tokens is None else max_tokens
                await self.throttle(self.count_prompt_tokens(messages) + tokens)
            return await self.inner.chat(messages, max_tokens)

    def _bounded(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop (created lazily: asyncio.run makes new loops)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
            self._semaphore_loop = loop
        return self._semaphore
