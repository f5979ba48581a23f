"""The keyless teacher client that budgets and pre-flights count with: the teacher's
tokenizer (litellm's `token_counter`) and its prices (litellm's price map, the config's
`input_cost_per_1m_usd` / `output_cost_per_1m_usd`, or the oracle's simulated list prices),
times `batch_price_ratio` when `teacher.mode` is "batch" (budgets count at batch prices).
It never sends a request and never reads an API key (docs/design.md §2.6)."""

from __future__ import annotations

from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import TeacherConfig


def pricing_client(cfg: TeacherConfig) -> TeacherClient:
    """A TeacherClient for `cfg` with no key source and no endpoint: use its
    `count_prompt_tokens(messages)` and `price_usd(prompt_tokens, completion_tokens)` (USD;
    at batch prices in batch mode)."""
    keyless = cfg.model_copy(update={"api_key_env": None, "api_key_secret": None})
    return TeacherClient.from_config(keyless, None)
