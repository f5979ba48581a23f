"""Teacher prices and tokens, in one place (docs/design.md §2.6; issue #23): `TeacherPrices`.

Every cost in USD the teacher layers record or budgets count with comes from here: the
configured `input_cost_per_1m_usd` / `output_cost_per_1m_usd`, else litellm's price map (0.0
for a model it does not know), times `batch_price_ratio` for replies from a provider batch
and for budgets when `teacher.mode` is "batch" (`price_usd`); a synchronous reply is always
at list price (`reply_cost_usd`). The offline oracle (a test double) is billed at simulated
gpt-4o-mini list prices (ORACLE_SIMULATED_PRICES), so dollar budgets and cost reports mean
something offline: a price left unset for model "openai/oracle" takes its simulated value
here, and only here; the same prices are registered with litellm (see
`_register_with_litellm`). Prompt tokens are litellm's offline tokenizer for the model.

`pricing_client(cfg)`: the keyless pricing that budgets and pre-flights use; it never sends
a request and never reads an API key.
"""

from __future__ import annotations

import logging

import litellm

from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.settings import ORACLE_MODEL, ClientSettings

logger = logging.getLogger(__name__)

# USD per 1M input / output tokens charged for the oracle (simulated: gpt-4o-mini list prices).
ORACLE_SIMULATED_PRICES = (0.15, 0.60)
_REGISTERED_PRICES: set[tuple[str, float, float]] = set()  # (model, in, out) litellm knows


class TeacherPrices:
    """Prices and prompt tokens of the teacher of `settings` (no key, no endpoint needed)."""

    def __init__(self, settings: ClientSettings):
        self.model = settings.model
        per_in, per_out = settings.input_cost_per_1m_usd, settings.output_cost_per_1m_usd
        if self.model == ORACLE_MODEL:  # the test double: simulated list prices
            sim_in, sim_out = ORACLE_SIMULATED_PRICES
            per_in = sim_in if per_in is None else per_in
            per_out = sim_out if per_out is None else per_out
            _register_with_litellm(per_in, per_out)
        self.input_cost_per_1m_usd, self.output_cost_per_1m_usd = per_in, per_out
        self.ratio = settings.batch_price_ratio if settings.mode == "batch" else 1.0

    def count_prompt_tokens(self, messages: list[dict]) -> int:
        """Prompt tokens of `messages` by litellm's offline tokenizer for this model."""
        return int(litellm.token_counter(model=self.model, messages=messages))

    def count_text_tokens(self, text: str) -> int:
        """Tokens of a plain `text` by the same tokenizer (no chat-message overhead)."""
        return int(litellm.token_counter(model=self.model, text=text))

    def price_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for that usage: the list price (below), times batch_price_ratio in batch mode
        (what a provider batch's replies cost, and what budgets and estimates count with)."""
        return self.list_price_usd(prompt_tokens, completion_tokens) * self.ratio

    @property
    def configured(self) -> bool:
        """Prices are set (by the config or the oracle's simulation), not litellm's."""
        return self.input_cost_per_1m_usd is not None or self.output_cost_per_1m_usd is not None

    def list_price_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for that usage: the configured prices, else litellm's price map, else 0.0."""
        if self.configured:
            return (prompt_tokens * (self.input_cost_per_1m_usd or 0.0)
                    + completion_tokens * (self.output_cost_per_1m_usd or 0.0)) / 1e6
        try:
            cost_in, cost_out = litellm.cost_per_token(
                model=self.model, prompt_tokens=int(prompt_tokens),
                completion_tokens=int(completion_tokens))
            return float(cost_in + cost_out)
        except Exception:  # noqa: BLE001 - unknown model: no price, not an error
            return 0.0

    def reply_cost_usd(self, response: litellm.ModelResponse, prompt_tokens: int,
                       completion_tokens: int) -> float:
        """A synchronous reply's cost, at list price (never discounted, in batch mode neither):
        configured per-1M prices if given, else litellm's price of the response, else 0.0."""
        if self.configured:
            return self.list_price_usd(prompt_tokens, completion_tokens)
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - unknown model: no price, not an error
            logger.debug("no litellm price for %s; counting cost 0.0", self.model)
            return 0.0


def pricing_client(cfg: TeacherConfig) -> TeacherPrices:
    """The prices of `cfg`'s teacher with no key source and no endpoint: use its
    `count_prompt_tokens(messages)` and `price_usd(prompt_tokens, completion_tokens)` (USD;
    at batch prices in batch mode)."""
    keyless = cfg.model_copy(update={"api_key_env": None, "api_key_secret": None})
    return TeacherPrices(ClientSettings.from_config(keyless, None))


def _register_with_litellm(input_per_1m: float | None, output_per_1m: float | None) -> None:
    """Tell litellm the oracle's prices (once per process and price pair).

    litellm prices every response itself; for a model missing from its price map ("oracle")
    that lookup walks its name-generalisation fallbacks on every call (about a quarter of
    litellm's per-call CPU measured here, issue #7). Registered, the lookup is a hit, as for
    a real provider's model. Costs we record still come from TeacherPrices (the same numbers).
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
