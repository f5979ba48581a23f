"""`ClientSettings`: every parameter of a teacher client, declared once (issue #23).

One frozen dataclass, built from a run's `TeacherConfig` (`from_config`) or from keyword
arguments (`TeacherClient("openai/oracle", api_base=...)`), validated once. It is what the
backends and wrappers read, and what a worker process gets (`for_worker`: the key resolved,
so the worker needs neither the environment nor a Prefect block). Runtime resources (the
reply journal, a throttle, a ReplyCache object) are not settings: the façade
(elad_core/teacher/client.py) takes those beside it. Prices are read from here by
elad_core/teacher/pricing.py, the one place where the oracle's simulated prices apply.

Also here, because they are functions of the settings alone: the key sent with a request
and its redaction from messages, a request's timeout (issue #22), the endpoint in words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

from elad_core.errors import ConfigError

if TYPE_CHECKING:
    from elad_core.teacher.config import TeacherConfig

ORACLE_MODEL = "openai/oracle"  # litellm model string of the offline oracle teacher (§2.4)

DEFAULT_TIMEOUT_BASE_S = 60.0  # TeacherConfig.timeout_base_s
DEFAULT_MIN_TOKENS_PER_S = 4.0  # TeacherConfig.min_tokens_per_s


@dataclass(frozen=True)
class ClientSettings:
    """The settings of a client for one teacher model.

    model: litellm model string ("openai/gpt-4o-mini", "anthropic/claude-...", "openai/oracle").
    api_key_env: name of the environment variable holding the key (ConfigError if unset);
    None -> "no-key" for the oracle, else litellm reads the provider's own variables.
    api_key: the key itself, already resolved (e.g. from a Prefect Secret block); exclusive
    with api_key_env; never shown in repr. timeout_s: seconds per request, fixed; None
    (default) -> scaled per request: timeout_base_s + max_tokens × timeout_concurrency /
    min_tokens_per_s (see request_timeout_s; timeout_concurrency defaults to max_concurrency,
    the requests that may share the server's speed). max_tokens: a request's completion limit
    unless the call names its own. Costs: USD per 1M tokens; None -> litellm's price map (0.0
    for models it does not know; the oracle: its simulated prices, see pricing.py).
    reply_cache: folder of the reply cache shared across runs (temperature 0 only).
    mode: "sync" or "batch" (batch_poll_s, batch_max_wait_s in seconds; batch_price_ratio:
    batch price / list price; see elad_core/teacher/batch.py).
    """

    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float | None = None
    timeout_base_s: float = DEFAULT_TIMEOUT_BASE_S
    min_tokens_per_s: float = DEFAULT_MIN_TOKENS_PER_S
    timeout_concurrency: int | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    max_concurrency: int = 8
    input_cost_per_1m_usd: float | None = None
    output_cost_per_1m_usd: float | None = None
    reply_cache: str | None = None
    mode: str = "sync"
    batch_poll_s: float = 30.0
    batch_max_wait_s: float = 90000.0
    batch_price_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.api_key_env and self.api_key:
            raise ConfigError("teacher: give the API key by api_key_env or by api_key_secret, "
                              "not both")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise ConfigError(
                f"teacher.api_key_env: environment variable {self.api_key_env} is not set; "
                "export it with the provider's API key (the key itself never goes in a config)"
            )
        if self.mode not in ("sync", "batch"):
            raise ConfigError(f"teacher.mode must be 'sync' or 'batch', got {self.mode!r}")
        if self.max_concurrency < 1:
            raise ConfigError(f"teacher.max_concurrency must be >= 1, got {self.max_concurrency}")
        if (self.timeout_s is not None and self.timeout_s <= 0) or self.timeout_base_s <= 0 \
                or self.min_tokens_per_s <= 0:
            raise ConfigError("teacher.timeout_s, teacher.timeout_base_s and "
                              "teacher.min_tokens_per_s must be > 0")
        if self.reply_cache is not None:
            object.__setattr__(self, "reply_cache", str(self.reply_cache))
        # a worker process's client keeps the whole batch's concurrency here (its own
        # max_concurrency is a share): all of them share the one server
        if not self.timeout_concurrency:
            object.__setattr__(self, "timeout_concurrency", self.max_concurrency)

    @classmethod
    def from_config(cls, cfg: TeacherConfig, api_base: str | None, *,
                    api_key: str | None = None) -> ClientSettings:
        """Settings for `cfg` (every field named alike in TeacherConfig is taken from it);
        for model "oracle", `api_base` is the running oracle server's.

        api_key: the resolved key of `cfg.api_key_secret` (the caller resolves the block).
        """
        oracle = cfg.model == "oracle"
        taken = {f.name: getattr(cfg, f.name) for f in fields(cls) if hasattr(cfg, f.name)}
        return cls(**{**taken, "model": ORACLE_MODEL if oracle else cfg.model,
                      "api_base": api_base if oracle else (api_base or cfg.api_base),
                      "api_key": api_key})

    def for_worker(self, **overrides) -> ClientSettings:
        """These settings for a worker process's client: the key resolved (no environment
        or Prefect block needed there), `overrides` applied (e.g. its max_concurrency share;
        timeout_concurrency stays the whole batch's)."""
        key = self.api_key or (self.request_api_key() if self.api_key_env else None)
        return replace(self, api_key_env=None, api_key=key, **overrides)

    def request_api_key(self) -> str | None:
        """The key sent with a request, read now: the resolved key, the named environment
        variable, "no-key" for the oracle and a local OpenAI-style server, else None (litellm
        reads the provider's own variable)."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigError(f"environment variable {self.api_key_env} is no longer set")
            return key
        if self.model == ORACLE_MODEL:
            return "no-key"
        if (self.api_base and self.model.startswith("openai/")
                and not os.environ.get("OPENAI_API_KEY")):
            return "no-key"  # a local OpenAI-style server (vLLM, llama.cpp, ...): no key needed
        return None

    def redact(self, text: str) -> str:
        """`text` with the API key (if any appears in it) replaced by '[redacted]'."""
        try:
            key = self.request_api_key()
        except ConfigError:
            return text
        if key and len(key) >= 8:
            text = text.replace(key, "[redacted]")
        return text

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


SETTING_NAMES = frozenset(f.name for f in fields(ClientSettings))
