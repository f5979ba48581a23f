"""Backend: the provider's batch API (`teacher.mode: batch`, docs/design.md §3.3).

`BatchBackend` is a `Teacher` whose requests go through the provider's batch API
(OpenAI-style, via litellm: a JSONL file uploaded with purpose "batch", `create_batch` on
/v1/chat/completions with a 24 h window, polled with `retrieve_batch`, its output read with
`file_content`) at the batch price.

The annotators are unchanged: they call `TeacherClient.chat` per question, concurrently.
In batch mode each call reaches `BatchBackend.chat` and is queued here; once no new request
has arrived for QUIET_S (every live dialogue is waiting on the queue; at most WINDOW_S after
the first), the queued requests go out as ONE provider batch and each caller gets its own
reply. So a CLEAR round runs turn by turn: all first turns in one batch, all second turns
in the next.

Never submitted twice: right after `create_batch` returns, and before any wait, the batch id,
its input file id and the request keys it holds (sha256 of model, sampling settings and
messages: `journal.request_key`, also the rows' `custom_id`) are appended, fsync'd, to
`<reply journal stem>.batches.jsonl` beside the reply journal. A killed and restarted task
finds its requests there and polls the journaled batch again instead of submitting. Every
answered row is written to the reply journal before any caller uses it, so a reply paid for
is replayed free afterwards; a batch whose outcome was used is marked final in the batch
journal. Rows that failed or expired in the batch, a batch that failed or could not be
submitted, and one not done within `batch_max_wait_s` of its submission (cancelled then) are
answered by the backend's `fallback` (the synchronous litellm backend behind its rate limits):
sent on the normal synchronous, retried path at list price. So is a request with its own
`max_tokens` (a short answer turn). Replies from a batch are at `batch_price_ratio` × list
price (TeacherPrices.price_usd). The reply journal wrapper sees a batch reply already
journaled and does not write it twice.
Not covered: a kill between the provider accepting `create_batch` and that journal line's
fsync (milliseconds) leaves a batch the rerun does not know of. Client-side rate limits
(`teacher.rpm_limit` / `tpm_limit`) apply to the synchronous path only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import litellm

from elad_core.teacher.batch_journal import BatchJournal
from elad_core.teacher.journal import ReplyJournal, request_key
from elad_core.teacher.pricing import TeacherPrices
from elad_core.teacher.protocol import Teacher, TeacherReply
from elad_core.teacher.settings import ClientSettings

__all__ = ["BatchBackend", "BatchJournal", "Batcher"]

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
QUIET_S = 0.05  # no new request for this long: every live dialogue waits -> submit the batch
WINDOW_S = 2.0  # ... or this long after the first queued request, whichever comes first
DONE = ("completed", "failed", "expired", "cancelled")  # a batch in one of these is over
# litellm's own logging would download a finished batch's output file again (its cost
# tracking) in a background task, left dangling when the event loop ends: not wanted
_NO_COST_FETCH = {"batch_ignore_default_logging": True}


@dataclass
class _Waiting:
    """One distinct request and the callers waiting for its reply."""

    key: str
    messages: list[dict]
    futures: list[asyncio.Future] = field(default_factory=list)


class BatchBackend:
    """A `Teacher` answering through provider batches, else through `fallback`.

    journal: the reply journal (None: none); answered rows are written to it before any
    caller uses them, and the batch journal lies beside it. `requests_sent` counts the
    requests submitted in batches (`fallback` counts its own).
    """

    def __init__(self, settings: ClientSettings, prices: TeacherPrices,
                 journal: ReplyJournal | None, fallback: Teacher):
        self.settings, self.prices, self.journal = settings, prices, journal
        self.fallback = fallback
        self.requests_sent = 0
        self._batcher: Batcher | None = None

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        """The reply from a provider batch (already journaled), or from `fallback` for a
        request the batch did not answer or one with its own `max_tokens`."""
        own_limit = max_tokens is not None and max_tokens != self.settings.max_tokens
        if not own_limit and (reply := await self._batcher_of_loop().chat(messages)) is not None:
            return reply
        return await self.fallback.chat(messages, max_tokens)

    def _batcher_of_loop(self) -> Batcher:
        """The Batcher of the running event loop (a new one per loop: asyncio.run)."""
        if self._batcher is None or self._batcher.loop is not asyncio.get_running_loop():
            self._batcher = Batcher(self)
        return self._batcher


class Batcher:
    """The batching layer of one BatchBackend on one event loop (see the module docstring).

    `await chat(messages)` -> the TeacherReply from a provider batch (already in the reply
    journal), or None: send this request synchronously.
    """

    def __init__(self, backend: BatchBackend):
        self.backend = backend
        self.settings = backend.settings
        self.loop = asyncio.get_running_loop()
        path = backend.journal.path if backend.journal is not None else None
        self.journal = BatchJournal(path.with_name(f"{path.stem}.batches.jsonl") if path else None)
        self._disabled = False  # no batch API for this model: sync from now on
        try:
            self._model, self._provider, _, _ = litellm.get_llm_provider(self.settings.model)
        except Exception as exc:  # noqa: BLE001 - litellm cannot route it: sync
            self._disabled = True
            logger.warning("teacher batch: no provider for %s (%s); sending synchronously",
                           self.settings.model, exc)
        self._queue: dict[str, _Waiting] = {}
        self._inflight: dict[str, _Waiting] = {}  # queued into a batch not yet answered
        self._arrivals = 0
        self._gathering: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    async def chat(self, messages: list[dict]) -> TeacherReply | None:
        if self._disabled:
            return None
        s = self.settings
        key = request_key(s.model, messages, s.temperature, s.max_tokens)  # the journal's key
        future = self.loop.create_future()
        waiting = self._inflight.get(key) or self._queue.setdefault(key, _Waiting(key, messages))
        waiting.futures.append(future)
        self._arrivals += 1
        if self._gathering is None:  # a strong reference: the loop keeps only weak ones
            self._gathering = task = self.loop.create_task(self._gather())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _auth(self) -> dict[str, Any]:
        return {"custom_llm_provider": self._provider, "api_base": self.settings.api_base,
                "api_key": self.settings.request_api_key(), "max_retries": 0}

    async def _gather(self) -> None:
        start, seen = self.loop.time(), -1
        while self._arrivals != seen and self.loop.time() - start < WINDOW_S:
            seen = self._arrivals
            await asyncio.sleep(QUIET_S)
        group, self._queue, self._gathering = list(self._queue.values()), {}, None
        for w in group:
            self._inflight[w.key] = w
        try:
            fresh, resumed = [], {}
            for w in group:
                batch_id = self.journal.batch_of(w.key)
                if batch_id is None:
                    fresh.append(w)
                elif batch_id in self.journal.final:  # answered already: its row failed
                    self._resolve([w], {})
                else:
                    resumed.setdefault(batch_id, []).append(w)
            for batch_id, ws in resumed.items():
                logger.info("teacher batch %s: resuming (journaled; %d requests waiting)",
                            batch_id, len(ws))
            # every batch runs to its end (return_exceptions): none is left polled by nobody
            outcomes = await asyncio.gather(*(self._wait(b, ws) for b, ws in resumed.items()),
                                            *([self._submit(fresh)] if fresh else []),
                                            return_exceptions=True)
            for exc in outcomes:
                if isinstance(exc, Exception):  # whatever is unanswered goes synchronously
                    logger.warning("teacher batch: %s: %s; sending its unanswered requests "
                                   "synchronously", type(exc).__name__,
                                   self.settings.redact(str(exc)))
        finally:
            self._resolve(group, {})

    def _resolve(self, ws: list[_Waiting], replies: dict[str, TeacherReply]) -> None:
        for w in ws:
            self._inflight.pop(w.key, None)
            for future in w.futures:
                if not future.done():
                    future.set_result(replies.get(w.key))

    async def _submit(self, ws: list[_Waiting]) -> None:
        s = self.settings
        lines = [json.dumps({"custom_id": w.key, "method": "POST", "url": ENDPOINT, "body": {
            "model": self._model, "messages": w.messages, "max_tokens": s.max_tokens,
            "temperature": s.temperature}}, ensure_ascii=False) for w in ws]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            upload = await litellm.acreate_file(
                file=("elad-batch.jsonl", data, "application/jsonl"), purpose="batch",
                **self._auth())
            batch = await litellm.acreate_batch(completion_window="24h", endpoint=ENDPOINT,
                                                input_file_id=upload.id, **self._auth())
        except Exception as exc:  # noqa: BLE001 - these requests go synchronously instead
            self._disabled = _permanent(exc)  # e.g. a provider without a batch API
            logger.warning("teacher batch: could not submit %d requests (%s)%s; sending them "
                           "synchronously", len(ws), s.redact(str(exc)),
                           " and every later one" if self._disabled else "")
            return
        self.backend.requests_sent += len(ws)
        self.journal.submitted(batch.id, upload.id, [w.key for w in ws])  # before any wait
        logger.info("teacher batch %s: submitted %d requests (input file %s)",
                    batch.id, len(ws), upload.id)
        await self._wait(batch.id, ws)

    async def _wait(self, batch_id: str, ws: list[_Waiting]) -> None:
        """Poll until the batch is over (or too old: cancel it), journal its replies, answer."""
        s, journal = self.settings, self.backend.journal
        deadline = self.journal.batches[batch_id]["submitted_at"] + s.batch_max_wait_s
        while True:
            try:
                batch = await litellm.aretrieve_batch(batch_id=batch_id, **self._auth(),
                                                      litellm_metadata=_NO_COST_FETCH)
                n = batch.request_counts
                logger.info("teacher batch %s: %s, %d completed / %d failed / %d total",
                            batch_id, batch.status, getattr(n, "completed", 0) or 0,
                            getattr(n, "failed", 0) or 0, getattr(n, "total", 0) or 0)
                if batch.status in DONE:
                    break
            except Exception as exc:  # noqa: BLE001 - a failed poll is polled again ...
                logger.warning("teacher batch %s: poll failed (%s)", batch_id, s.redact(str(exc)))
                if _permanent(exc):  # ... unless the provider does not know it (404: gone)
                    self.journal.finished(batch_id, "lost")
                    return
            left = deadline - time.time()
            if left <= 0:
                logger.warning("teacher batch %s: not done within batch_max_wait_s (%g s); "
                               "cancelling it, sending its requests synchronously",
                               batch_id, s.batch_max_wait_s)
                try:
                    await litellm.acancel_batch(batch_id=batch_id, **self._auth())
                except Exception as exc:  # noqa: BLE001 - best effort
                    logger.warning("teacher batch %s: cancel failed (%s)", batch_id,
                                   s.redact(str(exc)))
                self.journal.finished(batch_id, "abandoned")
                return
            await asyncio.sleep(min(s.batch_poll_s, left))
        replies, why = await self._replies([batch.output_file_id, batch.error_file_id])
        if replies and journal is not None:  # on disk before any caller uses one
            await asyncio.to_thread(journal.put_many,
                                    [(k, asdict(r)) for k, r in replies.items()])
        self.journal.finished(batch_id, batch.status)
        missing = sum(w.key not in replies for w in ws)
        if missing:
            logger.warning("teacher batch %s: %s; %d of %d requests got no reply in it (%s), "
                           "sending them synchronously", batch_id, batch.status, missing,
                           len(ws), why or getattr(batch, "errors", None) or "no detail")
        self._resolve(ws, replies)

    async def _replies(self, file_ids: list[str | None]) -> tuple[dict[str, TeacherReply],
                                                                    str | None]:
        """Output / error files -> ({custom_id (request key): reply at the batch price}, the
        first row error's message); rows not a readable HTTP 200 completion are left out."""
        out: dict[str, TeacherReply] = {}
        why = None
        for file_id in filter(None, file_ids):
            content = await litellm.afile_content(file_id=file_id, **self._auth())
            for raw in content.content.splitlines():
                try:
                    row = json.loads(raw)
                    response = row.get("response") or {}
                    if response.get("status_code") != 200:
                        why = why or str((response.get("body") or {}).get("error")
                                         or row.get("error"))[:300]
                        continue
                    body, key = response["body"], row["custom_id"]
                    text = body["choices"][0]["message"]["content"] or ""
                    usage = body.get("usage") or {}
                    prompt, completion = (int(usage.get("prompt_tokens") or 0),
                                          int(usage.get("completion_tokens") or 0))
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    continue
                out[key] = TeacherReply(text, prompt, completion,
                                        self.backend.prices.price_usd(prompt, completion))
        return out, why


def _permanent(exc: BaseException) -> bool:
    """A 4xx other than 408 / 429: asking again will not help."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
