"""The teacher section of every config (ELAD and EvoKD): model, endpoint, key source,
concurrency, retries, rate limits, prices, and the oracle's injected faults
(docs/design.md §2.4, §3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from elad_core.config_base import StrictModel

# the TeacherConfig fields that decide a teacher's reply (with the prompt version): the
# cache key of every teacher task; endpoint, key, timeouts and concurrency are not in it
REPLY_FIELDS = ("model", "temperature", "max_tokens", "input_cost_per_1m_usd",
                "output_cost_per_1m_usd")


# a share of requests (or of a batch's rows), a probability
Share = Annotated[float, Field(ge=0, le=1)]


class OracleFaultConfig(StrictModel):
    """Faults the oracle teacher injects, seeded (docs/design.md §2.4); all off by default."""

    # the descriptions are the help of `elad teacher-server`'s fault options (flows/cli_options.py)
    latency_s: float = Field(0.0, ge=0, description="Injected latency per request (s).")
    reply_style: Literal["oracle", "real", "no_answer"] = Field("oracle", description=(
        "How CoT solutions are written: oracle = our protocol (`#### N`), real = real models' "
        "layouts (\"The answer is N\", **Answer:**, \\boxed{N}, Final answer:), no_answer = "
        "with no answer."))
    error_rate: Share = Field(0.0, description="Share of requests answered HTTP 500.")
    rate_limit_rate: Share = Field(0.0, description="Share answered 429 + Retry-After.")
    timeout_rate: Share = Field(0.0, description="Share held hang-s seconds (client times out).")
    drop_rate: Share = Field(0.0, description="Share whose connection drops mid-body.")
    malformed_rate: Share = Field(0.0, description="Share answered 200 with truncated JSON.")
    unparsable_rate: Share = Field(0.0, description="Share answered with a useless text.")
    bad_request_rate: Share = Field(0.0, description="Share answered 400 (permanent).")
    retry_after_s: float = Field(1.0, ge=0, description="Retry-After of the injected 429s (s).")
    hang_s: float = Field(30.0, ge=0, description="How long a timeout fault holds a request (s).")
    seed: int = Field(0, description="Seed of the injected faults.")
    # batch API (teacher.mode: batch); batch_delay_s may be lowered on a running server
    # (app.state.batch_delay_s)
    batch_delay_s: float = Field(0.0, ge=0, description=(
        "Batch API: seconds from submission until a batch is done."))
    batch_row_fail_rate: Share = Field(0.0, description=(
        "Batch API: share of a batch's rows answered with an error line (seeded by messages)."))
    batch_end: Literal["completed", "expired", "failed"] = Field("completed", description=(
        "Batch API: how a batch ends once its delay has passed."))

    @model_validator(mode="after")
    def _rates_sum(self) -> "OracleFaultConfig":
        total = (self.error_rate + self.rate_limit_rate + self.timeout_rate + self.drop_rate
                 + self.malformed_rate + self.unparsable_rate + self.bad_request_rate)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fault rates sum to {total:g}; at most 1 is possible")
        return self


class TeacherConfig(StrictModel):
    model: str = Field(
        "oracle", description="'oracle' (the local test double) or a litellm model string.")
    api_base: str | None = Field(None, description=(
        "Teacher endpoint (OpenAI style, e.g. http://127.0.0.1:8000/v1; set automatically for "
        "oracle)."))
    # the API key comes from an environment variable or from a Prefect Secret block, not both
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "Env var holding the teacher API key (its name, never the key)."))
    api_key_secret: str | None = Field(None, description=(  # resolved inside the teacher task
        "Prefect Secret block holding the teacher API key (its name); not with api_key_env."))
    seed_annotator: Literal["cot", "clear", "clear_single"] = Field(
        "cot", description="Teacher annotation of round 0's seed questions.")
    annotator: Literal["cot", "clear", "clear_single"] = Field(
        "clear", description="Teacher annotation after round 0: clear = ELAD's multi-turn "
                             "CLEAR, clear_single = one call, cot = from scratch "
                             "(docs/design.md §2.3).")
    answer_turn: bool | Literal["auto"] = Field("auto", description=(
        "A reply with no readable answer is sent back once with an answer trigger (Kojima et "
        "al. 2022; docs/design.md §2.3); auto = on unless the teacher is the oracle test "
        "double."))
    max_concurrency: int = Field(8, ge=1, description="Concurrent requests inside one batch.")
    # litellm's ~3 ms CPU per call caps one event loop near 300 calls/s
    processes: int = Field(1, ge=1, description=(
        "Worker processes a batch's requests are spread over, each with its own event loop; "
        "1 = in the task's process."))
    batch_size: int = Field(16, ge=1, description="Questions per cached teacher task.")
    # None (TeacherClient.request_timeout_s): a slow local server (a small model on a CPU
    # writing max_tokens) gets the time it needs with no number set by hand
    timeout_s: float | None = Field(None, gt=0, description=(
        "Seconds one request may take before it counts as failed (transient: retried), for "
        "every request; None = scaled to the request: timeout_base_s + max_tokens × "
        "max_concurrency / min_tokens_per_s."))
    timeout_base_s: float = Field(60.0, gt=0, description=(
        "Fixed part of the scaled timeout (s): connecting, reading the prompt, a queue."))
    # a local server shares its speed between the requests in flight. 4: a 1B model on a
    # laptop CPU; the defaults give 60 + 512 × 8 / 4 = 1084 s per request (a hung request is
    # found after that long)
    min_tokens_per_s: float = Field(4.0, gt=0, description=(
        "Slowest server still called working, in completion tokens per second summed over the "
        "max_concurrency requests in flight; slower than that, a request times out."))
    max_tokens: int = Field(512, ge=16, description=(  # TeacherClient.chat's max_tokens
        "Largest reply asked for (a request's max_tokens); an annotator may ask less for a turn "
        "whose reply is short."))
    temperature: float = Field(0.0, ge=0)
    retries: int = Field(4, ge=0, description="Prefect task retries for transient errors.")
    retry_delay_s: float = Field(1.0, ge=0, description=(
        "First retry backoff (s); doubles each retry, with jitter."))
    # client-side rate limits: Prefect global rate limits, created on first use
    rpm_limit: int | None = Field(None, ge=1, description=(
        "Client-side limit of requests per minute; None = none."))
    tpm_limit: int | None = Field(None, ge=1, description=(
        "Client-side limit of tokens per minute (prompt + max_tokens); None = none."))
    completion_tokens_estimate: int = Field(256, ge=1, description=(
        "Completion tokens per call, for budget estimates."))
    # None: ephemeral local runs need no setup
    concurrency_limit: str | None = Field(None, description=(
        "Prefect global concurrency limit held per teacher batch in flight, across all runs on "
        "a server (e.g. elad-teacher-api); None = no limit."))
    input_cost_per_1m_usd: float | None = Field(None, description=(
        "Teacher price per 1M input tokens (USD); None = litellm's price map (0 if unknown)."))
    output_cost_per_1m_usd: float | None = Field(None, description=(
        "Teacher price per 1M output tokens (USD); None = litellm's price map (0 if unknown)."))
    min_usable_fraction: float = Field(0.5, ge=0, le=1, description=(
        "A round stops annotating when its usable replies fall under this share (none usable "
        "always stops): one line with the cause and a raw reply, everything paid for kept."))
    # a folder of replies shared across runs (elad_core.teacher.reply_cache): temperature-0
    # requests found there are not sent again; None: no cross-run cache
    reply_cache: str | None = Field(None, description=(
        "Folder of teacher replies shared across runs: temperature-0 requests found there "
        "are not sent (and not paid) again."))
    filter_wrong_teacher: bool = Field(False, description=(
        "Drop annotations disagreeing with the gold answer (where there is one)."))
    max_clear_turns: int = Field(16, ge=1)
    # sync: one request per call; batch: a round's requests go through the provider's batch
    # API (elad_core/teacher/batch.py), at batch prices; not in the reply cache key
    mode: Literal["sync", "batch"] = Field("sync", description=(
        "Teacher requests one by one or through the provider's batch API at its batch price "
        "(batch: hours)."))
    batch_poll_s: float = Field(30.0, gt=0, description=(
        "Seconds between polls of a submitted batch."))
    batch_max_wait_s: float = Field(90000.0, gt=0, description=(  # 24 h completion window + 1 h
        "Seconds from its submission after which a batch is given up: its unanswered requests "
        "are then sent synchronously."))
    batch_price_ratio: float = Field(0.5, gt=0, le=1, description=(
        "Batch price / list price (OpenAI: 0.5)."))
    oracle: OracleFaultConfig = Field(OracleFaultConfig(), description=(
        "Faults the oracle teacher injects (oracle only; tests)."))

    @model_validator(mode="after")
    def _one_key_source(self) -> "TeacherConfig":
        if self.api_key_env and self.api_key_secret:
            raise ValueError("set api_key_env or api_key_secret, not both")
        return self

    def reply_key(self, prompt_version: str, *fields: str) -> dict:
        """The cache key of a teacher task: REPLY_FIELDS plus the method's own `fields`
        (e.g. ELAD's max_clear_turns) and the prompt version. Never the endpoint or key."""
        return {**self.model_dump(include={*REPLY_FIELDS, *fields}),
                "prompt_version": prompt_version}
