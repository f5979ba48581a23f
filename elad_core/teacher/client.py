"""The narrow teacher client (docs/design.md §2.3, §3): one async `chat` call through litellm.

Any provider litellm speaks to works (OpenAI, Anthropic, vLLM, Ollama, ...); the offline oracle
teacher is reached the same way (`openai/oracle` on a loopback `api_base`). Concurrency is
bounded by a semaphore; litellm's own retries are OFF (retries live in the Prefect task layer);
errors are mapped to TransientTeacherError (retry) or PermanentTeacherError (record and move on).
The API key comes from an environment variable (read at call time) or is handed over already
resolved (a Prefect Secret block, resolved by the task); it is never logged or stored, and
is redacted from error messages. Two seams: a `ReplyJournal` (a reply paid for is never paid
again) and a `throttle` coroutine awaited before each request (client-side rate limits).

Per-call CPU (issue #7, `benchmarks/throughput.py`): replies of concurrent requests are
journaled in groups, one fsync per group in a worker thread, so the event loop never waits
on the disk; the oracle's simulated prices are registered with litellm once, so litellm's own
per-call cost lookup hits its price map instead of walking its fallbacks for an unknown model.

Timeouts (issue #22): unless `timeout_s` fixes one number, each request may take
`request_timeout_s(max_tokens)` = timeout_base_s + max_tokens × (requests in flight) /
min_tokens_per_s seconds: a server that writes at least min_tokens_per_s completion tokens per
second, summed over this client's concurrent requests, is never cut off, whatever its
hardware; one slower than that (or hung) times out. A call asking for fewer tokens
(`chat(messages, max_tokens=...)`: a short answer turn) gets a shorter timeout. A request to an
OpenAI-style `api_base` with no key anywhere sends the placeholder "no-key" (local servers
take any key; litellm refuses to send none). Transient failures name the endpoint, the
cause and the setting to change (connection refused -> teacher.api_base, a timeout ->
teacher.timeout_s, ...), on one line.

Batch mode (`mode="batch"`): a request the journal does not hold is queued for the provider's
batch API (elad_core/teacher/batch.py) and priced at `batch_price_ratio` × list price; a row
the batch did not answer falls through to the synchronous path below, at list price.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import litellm

from elad_core.errors import (
    ConfigError,
    PermanentTeacherError,
    TeacherAuthError,
    TeacherError,
    TransientTeacherError,
)
from elad_core.teacher.batch import batcher_of
from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.journal import GroupCommit, ReplyJournal, request_key
from elad_core.teacher.reply_cache import ReplyCache

logger = logging.getLogger(__name__)
litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" prints on every error

ORACLE_MODEL = "openai/oracle"  # litellm model string of the offline oracle teacher (§2.4)
# USD per 1M input / output tokens charged for the oracle (simulated: gpt-4o-mini list prices).
ORACLE_SIMULATED_PRICES = (0.15, 0.60)
_REGISTERED_PRICES: set[tuple[str, float, float]] = set()  # (model, in, out) litellm knows

DEFAULT_TIMEOUT_BASE_S = 60.0  # TeacherConfig.timeout_base_s
DEFAULT_MIN_TOKENS_PER_S = 4.0  # TeacherConfig.min_tokens_per_s

_TRANSIENT = (
    litellm.RateLimitError,
    litellm.ServiceUnavailableError,
    litellm.InternalServerError,
    litellm.BadGatewayError,
    litellm.APIConnectionError,
    litellm.Timeout,
    TimeoutError,
)
_AUTH = (litellm.AuthenticationError, litellm.PermissionDeniedError)
_PERMANENT = (
    litellm.BadRequestError,
    litellm.NotFoundError,
    litellm.UnprocessableEntityError,
)


@dataclass(frozen=True)
class TeacherReply:
    """One teacher reply: its text, token usage as reported by the server, cost in USD."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds from a `Retry-After` / `retry-after-ms` response header of `exc`, else None.

    Accepts delta-seconds (float) and HTTP-dates (RFC 9110 §10.2.3).
    """
    # litellm keeps the provider's headers on `litellm_response_headers` (its `response` is a
    # rebuilt httpx.Response whose headers may be empty); plain openai errors only on `response`.
    headers = (getattr(exc, "litellm_response_headers", None)
               or getattr(getattr(exc, "response", None), "headers", None) or {})
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during (at most 16)."""
    out: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(out) < 16:
        out.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return out


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line (whitespace runs collapsed), at most `limit` characters."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


class TeacherClient:
    """Async chat client for one teacher model.

    model: litellm model string ("openai/gpt-4o-mini", "anthropic/claude-...", "openai/oracle").
    api_key_env: name of the environment variable holding the key (ConfigError if unset);
    None -> "no-key" for the oracle, else litellm reads the provider's own variables.
    api_key: the key itself, already resolved (e.g. from a Prefect Secret block); exclusive
    with api_key_env. timeout_s: seconds per request, fixed; None (default) -> scaled per
    request: timeout_base_s + max_tokens × timeout_concurrency / min_tokens_per_s (see
    request_timeout_s; timeout_concurrency defaults to max_concurrency, the requests that may
    share the server's speed). max_tokens: a request's completion limit unless the call
    names its own. Costs: USD per 1M tokens; None ->
    litellm's price map (0.0 for models it does not know; the oracle: its simulated prices,
    ORACLE_SIMULATED_PRICES). journal: replies already paid for
    are served from it (no request) and new ones recorded in it. throttle: awaited with the
    request's token occupancy (prompt + max_tokens) before each request is sent.
    mode: "sync" or "batch" (batch_poll_s, batch_max_wait_s in seconds; batch_price_ratio:
    batch price / list price; see elad_core/teacher/batch.py).
    reply_cache: a ReplyCache (or its folder) shared across runs, used at temperature 0 only.
    `requests_sent` counts every request attempted, `replayed` those served by the journal,
    `reused` those served by the reply cache.
    """

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        max_concurrency: int = 8,
        input_cost_per_1m_usd: float | None = None,
        output_cost_per_1m_usd: float | None = None,
        api_key: str | None = None,
        journal: ReplyJournal | None = None,
        throttle: Callable[[int], Awaitable[None]] | None = None,
        reply_cache: ReplyCache | str | Path | None = None,
        mode: str = "sync",
        batch_poll_s: float = 30.0,
        batch_max_wait_s: float = 90000.0,
        batch_price_ratio: float = 0.5,
        timeout_base_s: float = DEFAULT_TIMEOUT_BASE_S,
        min_tokens_per_s: float = DEFAULT_MIN_TOKENS_PER_S,
        timeout_concurrency: int | None = None,
    ):
        if api_key_env and api_key:
            raise ConfigError("teacher: give the API key by api_key_env or by api_key_secret, "
                              "not both")
        if api_key_env and not os.environ.get(api_key_env):
            raise ConfigError(
                f"teacher.api_key_env: environment variable {api_key_env} is not set; "
                "export it with the provider's API key (the key itself never goes in a config)"
            )
        if mode not in ("sync", "batch"):
            raise ConfigError(f"teacher.mode must be 'sync' or 'batch', got {mode!r}")
        if max_concurrency < 1:
            raise ConfigError(f"teacher.max_concurrency must be >= 1, got {max_concurrency}")
        if (timeout_s is not None and timeout_s <= 0) or timeout_base_s <= 0 \
                or min_tokens_per_s <= 0:
            raise ConfigError("teacher.timeout_s, teacher.timeout_base_s and "
                              "teacher.min_tokens_per_s must be > 0")
        self.model = model
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.timeout_base_s, self.min_tokens_per_s = timeout_base_s, min_tokens_per_s
        # a worker process's client keeps the whole batch's concurrency here (its own
        # max_concurrency is a share): all of them share the one server
        self.timeout_concurrency = timeout_concurrency or max_concurrency
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_concurrency = max_concurrency
        if model == ORACLE_MODEL and input_cost_per_1m_usd is None and output_cost_per_1m_usd is None:
            input_cost_per_1m_usd, output_cost_per_1m_usd = ORACLE_SIMULATED_PRICES
        self.input_cost_per_1m_usd = input_cost_per_1m_usd
        self.output_cost_per_1m_usd = output_cost_per_1m_usd
        self.requests_sent = 0
        self._replayed_elsewhere = 0
        # replies paid by another run (teacher.reply_cache, temperature 0 only)
        self.reply_cache = (ReplyCache(reply_cache) if isinstance(reply_cache, (str, Path))
                            else reply_cache) if temperature == 0 else None
        self.reused = 0
        self.journal = journal
        self.throttle = throttle
        self._api_key_env = api_key_env
        self._api_key_value = api_key
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self._commit: GroupCommit | None = None
        self.mode, self.batch_poll_s, self.batch_max_wait_s = mode, batch_poll_s, batch_max_wait_s
        self.batch_price_ratio = batch_price_ratio
        self._batcher = None  # batch mode: the Batcher of the running event loop
        if model == ORACLE_MODEL:
            _register_oracle_prices(input_cost_per_1m_usd, output_cost_per_1m_usd)

    @property
    def replayed(self) -> int:
        """Replies served from the journal instead of a request (worker processes included)."""
        return (self.journal.hits if self.journal is not None else 0) + self._replayed_elsewhere

    def add_counts(self, requests_sent: int, replayed: int, reused: int = 0) -> None:
        """Count requests sent, journal replays and reply-cache reuses made for this client by
        worker processes."""
        self.requests_sent += requests_sent
        self._replayed_elsewhere += replayed
        self.reused += reused

    def worker_kwargs(self, **overrides) -> dict:
        """Constructor arguments of an equivalent client for a worker process (no journal or
        throttle; the key resolved, so the worker needs no environment or Prefect block)."""
        return {"model": self.model, "api_base": self.api_base, "timeout_s": self.timeout_s,
                "timeout_base_s": self.timeout_base_s, "min_tokens_per_s": self.min_tokens_per_s,
                "timeout_concurrency": self.timeout_concurrency,
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "max_concurrency": self.max_concurrency,
                "input_cost_per_1m_usd": self.input_cost_per_1m_usd,
                "output_cost_per_1m_usd": self.output_cost_per_1m_usd,
                "mode": self.mode, "batch_poll_s": self.batch_poll_s,
                "batch_max_wait_s": self.batch_max_wait_s,
                "batch_price_ratio": self.batch_price_ratio,
                "reply_cache": str(self.reply_cache.root) if self.reply_cache else None,
                "api_key": self._api_key_value or (self._api_key() if self._api_key_env else None),
                **overrides}

    @classmethod
    def from_config(cls, cfg: TeacherConfig, api_base: str | None, *, api_key: str | None = None,
                    journal: ReplyJournal | None = None,
                    throttle: Callable[[int], Awaitable[None]] | None = None) -> TeacherClient:
        """Client for `cfg`; for model "oracle", `api_base` is the running oracle server's.

        api_key: the resolved key of `cfg.api_key_secret` (the caller resolves the block).
        """
        oracle = cfg.model == "oracle"
        # The oracle is a test double: it is billed at simulated gpt-4o-mini list prices so
        # that dollar budgets and cost reports mean something offline.
        sim_in, sim_out = (ORACLE_SIMULATED_PRICES if oracle else (None, None))
        return cls(
            model=ORACLE_MODEL if oracle else cfg.model,
            api_base=api_base if oracle else (api_base or cfg.api_base),
            api_key_env=cfg.api_key_env,
            timeout_s=cfg.timeout_s,
            timeout_base_s=cfg.timeout_base_s,
            min_tokens_per_s=cfg.min_tokens_per_s,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            max_concurrency=cfg.max_concurrency,
            input_cost_per_1m_usd=cfg.input_cost_per_1m_usd if cfg.input_cost_per_1m_usd
            is not None else sim_in,
            output_cost_per_1m_usd=cfg.output_cost_per_1m_usd if cfg.output_cost_per_1m_usd
            is not None else sim_out,
            api_key=api_key, journal=journal, throttle=throttle, reply_cache=cfg.reply_cache,
            mode=cfg.mode, batch_poll_s=cfg.batch_poll_s, batch_max_wait_s=cfg.batch_max_wait_s,
            batch_price_ratio=cfg.batch_price_ratio,
        )

    def _api_key(self) -> str | None:
        if self._api_key_value:
            return self._api_key_value
        if self._api_key_env:
            key = os.environ.get(self._api_key_env)
            if not key:
                raise ConfigError(f"environment variable {self._api_key_env} is no longer set")
            return key
        if self.model == ORACLE_MODEL:
            return "no-key"
        if (self.api_base and self.model.startswith("openai/")
                and not os.environ.get("OPENAI_API_KEY")):
            return "no-key"  # a local OpenAI-style server (vLLM, llama.cpp, ...): no key needed
        return None

    def request_timeout_s(self, max_tokens: int | None = None) -> float:
        """Seconds one request asking for `max_tokens` completion tokens (default: the
        configured max_tokens) may take: `timeout_s` when set, else timeout_base_s +
        max_tokens × timeout_concurrency / min_tokens_per_s."""
        if self.timeout_s is not None:
            return float(self.timeout_s)
        tokens = self.max_tokens if max_tokens is None else max_tokens
        return self.timeout_base_s + tokens * self.timeout_concurrency / self.min_tokens_per_s

    @property
    def endpoint(self) -> str:
        """Where requests go, for messages: the api_base, or the provider's default."""
        return self.api_base or f"the {self.model.split('/', 1)[0]} default endpoint"

    def _bounded(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop (created lazily: asyncio.run makes new loops)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphore_loop = loop
            self._commit = None  # its futures and flusher belong to the old loop
        return self._semaphore

    def count_prompt_tokens(self, messages: list[dict]) -> int:
        """Prompt tokens of `messages` by litellm's offline tokenizer for this model."""
        return int(litellm.token_counter(model=self.model, messages=messages))

    def price_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for that usage at this client's prices: the list price (below), times
        batch_price_ratio in batch mode (what budgets and estimates count with)."""
        ratio = self.batch_price_ratio if self.mode == "batch" else 1.0
        return self._list_price_usd(prompt_tokens, completion_tokens) * ratio

    def _list_price_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for that usage: the configured prices, else litellm's price map, else 0.0."""
        if self.input_cost_per_1m_usd is not None or self.output_cost_per_1m_usd is not None:
            return (prompt_tokens * (self.input_cost_per_1m_usd or 0.0)
                    + completion_tokens * (self.output_cost_per_1m_usd or 0.0)) / 1e6
        try:
            cost_in, cost_out = litellm.cost_per_token(
                model=self.model, prompt_tokens=int(prompt_tokens),
                completion_tokens=int(completion_tokens))
            return float(cost_in + cost_out)
        except Exception:  # noqa: BLE001 - unknown model: no price, not an error
            return 0.0

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
        own_limit = max_tokens is not None and max_tokens != self.max_tokens
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        key = None
        if self.journal is not None:
            key = request_key(self.model, messages, self.temperature, max_tokens)
            if (entry := self.journal.get(key)) is not None:
                return TeacherReply(**entry)
        shared = None
        if self.reply_cache:  # keyed on this request's limit
            shared = self.reply_cache.key(SimpleNamespace(
                model=self.model, api_base=self.api_base, temperature=self.temperature,
                max_tokens=max_tokens) if own_limit else self, messages)
        if shared and (entry := self.reply_cache.get(shared)) is not None:  # paid by another run
            self.reused += 1
            reply = TeacherReply(**entry)
            if key is not None:
                await self._journal(key, reply)
            return reply
        if self.mode == "batch" and not own_limit:  # None: not answered; sent synchronously
            if (reply := await batcher_of(self).chat(messages, key)) is not None:
                if shared:
                    self.reply_cache.put(shared, asdict(reply))
                return reply
        async with self._bounded():
            if self.throttle is not None:
                await self.throttle(self.count_prompt_tokens(messages) + max_tokens)
            api_key = self._api_key()
            timeout = self.request_timeout_s(max_tokens)
            self.requests_sent += 1
            try:
                response = await litellm.acompletion(
                    model=self.model,
                    messages=messages,
                    api_base=self.api_base,
                    api_key=api_key,
                    timeout=timeout,
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                    num_retries=0,
                )
            except Exception as exc:  # noqa: BLE001 - mapped or re-raised just below
                raise self._map_error(exc, timeout) from None
        reply = self._reply_of(response)
        if key is not None:
            await self._journal(key, reply)
        if shared:
            self.reply_cache.put(shared, asdict(reply))
        return reply

    async def _journal(self, key: str, reply: TeacherReply) -> None:
        """`reply` on disk in the journal (fsync'd, grouped with concurrent replies)."""
        if self._commit is None or self._commit.journal is not self.journal:
            self._commit = GroupCommit(self.journal)
        await self._commit.put(key, asdict(reply))

    def _redact(self, text: str) -> str:
        """`text` with the API key (if any appears in it) replaced by '[redacted]'."""
        try:
            key = self._api_key()
        except ConfigError:
            return text
        if key and len(key) >= 8:
            text = text.replace(key, "[redacted]")
        return text

    def _map_error(self, exc: Exception, timeout_s: float | None = None) -> Exception:
        """litellm / transport exception -> Transient- or PermanentTeacherError (others as is).

        A transient error's message is one line: "teacher MODEL at ENDPOINT: CAUSE; SETTING
        advice" (connection refused / unknown host -> teacher.api_base; no reply within
        timeout_s -> teacher.timeout_s; 429 -> teacher.rpm_limit / tpm_limit)."""
        status = _status_of(exc)
        where = f"teacher {self.model} at {self.endpoint}"
        text = _one_line(self._redact(str(exc)))
        chain = _causes(exc)
        if "missing credentials" in text.lower() or any(
                "api_key client option must be set" in str(c) for c in chain):
            return TeacherAuthError(f"{where}: no API key; set teacher.api_key_env (the name of "
                                    "the variable holding it) or the provider's own variable")
        transient_status = status is not None and (status >= 500 or status in (408, 429))
        if isinstance(exc, _TRANSIENT) or transient_status:
            wait = retry_after_s(exc)
            cause = self._transient_cause(exc, chain, status, text, timeout_s)
            logger.info("%s: transient failure (HTTP %s): %s", where, status, text)
            return TransientTeacherError(f"{where}: {cause}", wait)
        if isinstance(exc, _AUTH) or status in (401, 403):
            return TeacherAuthError(f"{where}: the API key was rejected (HTTP {status}): {text}; "
                                    "check teacher.api_key_env / teacher.api_key_secret")
        if isinstance(exc, _PERMANENT) or (status is not None and 400 <= status < 500):
            return PermanentTeacherError(f"{where}: request rejected (HTTP {status}): {text}")
        return TeacherError(f"{where}: unexpected {type(exc).__name__}: {text}")

    def _transient_cause(self, exc: Exception, chain: list[BaseException], status: int | None,
                         text: str, timeout_s: float | None) -> str:
        """The cause of a transient failure and the setting that changes it, in words."""
        if any(isinstance(c, ConnectionRefusedError) for c in chain):
            return ("connection refused: no server listens there; start it, or check "
                    "teacher.api_base (--teacher-api-base)")
        if any(isinstance(c, socket.gaierror) for c in chain):
            return "unknown host name; check teacher.api_base (--teacher-api-base)"
        timed_out = (isinstance(exc, (litellm.Timeout, TimeoutError)) or status == 408
                     or any(isinstance(c, TimeoutError) or "Timeout" in type(c).__name__
                            for c in chain))
        if timed_out:
            limit = f"{timeout_s:g} s" if timeout_s is not None else "the timeout"
            how = ("raise teacher.timeout_s, or unset it for a timeout scaled to max_tokens"
                   if self.timeout_s is not None else
                   "a slower server needs more: lower teacher.min_tokens_per_s "
                   f"(now {self.min_tokens_per_s:g} tokens/s) or set teacher.timeout_s")
            return f"no reply within {limit} (timed out); {how}"
        if status == 429:
            return (f"rate limited (HTTP 429): {text}; set teacher.rpm_limit / "
                    "teacher.tpm_limit below the provider's limits")
        if isinstance(exc, litellm.APIConnectionError) or any(
                "Connect" in type(c).__name__ for c in chain):
            return (f"cannot connect or the connection dropped ({text}); check "
                    "teacher.api_base (--teacher-api-base) and that the server is up")
        return f"server error (HTTP {status}): {text}"

    def _reply_of(self, response: litellm.ModelResponse) -> TeacherReply:
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return TeacherReply(text, prompt_tokens, completion_tokens,
                            self._cost_usd(response, prompt_tokens, completion_tokens))

    def _cost_usd(self, response: litellm.ModelResponse, prompt_tokens: int,
                  completion_tokens: int) -> float:
        """List price (a synchronous request is never discounted, in batch mode neither):
        configured per-1M prices if given, else litellm's price map, else 0.0."""
        if self.input_cost_per_1m_usd is not None or self.output_cost_per_1m_usd is not None:
            return self._list_price_usd(prompt_tokens, completion_tokens)
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - unknown model: no price, not an error
            logger.debug("no litellm price for %s; counting cost 0.0", self.model)
            return 0.0


def _register_oracle_prices(input_per_1m: float | None, output_per_1m: float | None) -> None:
    """Tell litellm the oracle's simulated prices (once per process and price pair).

    litellm prices every response itself; for a model missing from its price map ("oracle")
    that lookup walks its name-generalisation fallbacks on every call (about a quarter of
    litellm's per-call CPU measured here). Registered, the lookup is a hit, as for a real
    provider's model. Costs we record still come from `price_usd` (the same numbers).
    """
    prices = (ORACLE_MODEL, input_per_1m or 0.0, output_per_1m or 0.0)
    if prices in _REGISTERED_PRICES:
        return
    litellm.register_model({ORACLE_MODEL: {
        "litellm_provider": "openai", "mode": "chat",
        "input_cost_per_token": prices[1] / 1e6, "output_cost_per_token": prices[2] / 1e6,
        # the oracle caches nothing; set, so litellm does not warn about missing cache prices
        "cache_read_input_token_cost": 0.0, "cache_creation_input_token_cost": 0.0,
    }})
    _REGISTERED_PRICES.add(prices)
