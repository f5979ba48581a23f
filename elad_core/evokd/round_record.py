"""EvoKD's round records and the run's stop rule (docs/design.md §2.5, §2.6): what a round
writes to its manifest.json and summary.json row, why no further round runs, and the next
round's estimated teacher spend. Pure: no Prefect, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from elad_core.budget import Budget, Usage, measured_mean, with_cumulative_tokens
from elad_core.evokd.state import BatchRef, FeedbackRef, TrainedRef
from elad_core.refs import FileRef
from elad_core.run_summary import Invocation, SummaryJson

# teacher calls of one round per method: analyse + generate + label; generate + label; label
TEACHER_CALLS = {"evokd": 3, "static": 2, "random": 1, "kshot": 0}
SUMMARY_FIELDS = ("round", "method", "new_examples", "batch_statuses", "teacher_calls",
                  "teacher_tokens", "cost_usd", "generate_status", "labels_parsed",
                  "feedback_accuracy", "train_examples", "train_steps", "train_loss", "f1",
                  "accuracy", "wall_s")


@dataclass(kw_only=True)
class EvoKDRound:
    """One EvoKD round's record, filled in as its steps run: its manifest.json (`manifest`)
    and its summary.json row (`summary_rows`). Tokens are teacher tokens, costs USD, times s;
    f1 / accuracy are on the fixed eval subset (None in a round that was not evaluated)."""

    round: int
    method: str
    teacher_calls: int = 0
    teacher_tokens: int = 0
    cost_usd: float = 0.0
    analysis: str | None = None
    generate_status: str | None = None
    labels_parsed: int | None = None
    train_loss: float | None = None
    train_examples: int = 0
    train_steps: int = 0
    failed: str | None = None
    prompt_version: str
    precision: str | None = None  # set when the round trained
    new_examples: int = 0
    batch_ref: dict | None = None
    weights: dict = field(default_factory=dict)
    batch_statuses: dict[str, int] = field(default_factory=dict)
    feedback_accuracy: float | None = None
    f1: float | None = None
    accuracy: float | None = None
    eval: dict | None = None  # the evaluation's metrics (kept out of the manifest)
    step_wall_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    config: dict = field(default_factory=dict)

    def add_teacher_call(self, step: str, result: dict) -> bool:
        """Book one teacher call's tokens and cost; False (and `failed` says why) when the call
        failed permanently."""
        self.teacher_calls += 1
        self.teacher_tokens += result["teacher_tokens"]
        self.cost_usd = round(self.cost_usd + result["cost_usd"], 8)
        if result["status"] != "ok":
            self.failed = f"teacher {step} call failed: {result['error']}"
            return False
        return True

    def add_training(self, trained: TrainedRef) -> None:
        """Book a train task's result (losses, examples, precision)."""
        self.train_loss, self.train_examples = trained.losses[-1], trained.n_examples
        self.train_steps, self.precision = len(trained.losses), trained.precision

    def close(self, batch: BatchRef, batch_rows: list[dict], feedback: FeedbackRef,
              weights: FileRef | None) -> EvoKDRound:
        """The round's batch (ref and rows), the student's feedback accuracy on it (None when
        the batch had no usable row) and the weights after the round."""
        statuses = sorted({x["status"] for x in batch_rows})
        self.new_examples, self.batch_ref = batch.ok, batch.model_dump()
        self.weights = weights.model_dump() if weights else {}
        self.batch_statuses = {s: sum(x["status"] == s for x in batch_rows) for s in statuses}
        self.feedback_accuracy = feedback.correct / feedback.n if feedback.n else None
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def manifest(self) -> dict:
        """The manifest.json object: every field but `eval`, and `precision` only where the
        round trained."""
        return {k: v for k, v in self.as_dict().items()
                if k != "eval" and not (k == "precision" and v is None)}


def measured_round_usage(records: list[EvoKDRound]) -> Usage | None:
    """The mean teacher spend of the teacher rounds so far (None before any)."""
    done = [x.as_dict() for x in records if x.teacher_calls]
    return measured_mean(done, len(done)) if done else None


def stop_reason(records: list[EvoKDRound], next_round: int, rounds: int, method: str,
                budget: Budget, estimate: Callable[[], tuple[Usage, str]]) -> str | None:
    """Why no round `next_round` runs (a failure, kshot, rounds done, a budget), or None.

    estimate: () -> the next round's (usage, basis); called only when the rest allows it."""
    if records and records[-1].failed:
        return f"stopped in round {next_round - 1}: {records[-1].failed}"
    if method == "kshot":
        return "method kshot: the seeds only, no teacher round"
    if next_round >= rounds:
        return f"finished {rounds} rounds"
    spent = Usage(sum(x.teacher_tokens for x in records), sum(x.cost_usd for x in records))
    est, basis = estimate()
    why = budget.refusal(spent, est)
    if why is None:
        return None
    return (f"stopped before round {next_round}: budget: the round would spend an "
            f"estimated {est.teacher_tokens:,.0f} teacher tokens / ${est.cost_usd:.4f} "
            f"({basis}); {why}")


def a_priori_round_usage(method: str, first_request_prompt_tokens: int,
                         completion_tokens: int, price_usd) -> tuple[Usage, str]:
    """A round's spend before any was measured: TEACHER_CALLS[method] calls, each of the
    prompt tokens of the method's first request plus `completion_tokens`."""
    calls = TEACHER_CALLS[method]
    prompt = calls * first_request_prompt_tokens
    completion = calls * completion_tokens
    return (Usage(prompt + completion, price_usd(prompt, completion)),
            f"a priori: {calls} call(s) of ~{prompt // max(1, calls)} prompt + "
            f"{completion_tokens} completion tokens")


def summary_rows(records: list[EvoKDRound]) -> list[dict]:
    """The rounds' rows of summary.json: SUMMARY_FIELDS and the cumulative teacher tokens."""
    return with_cumulative_tokens([{k: getattr(rec, k) for k in SUMMARY_FIELDS}
                                   for rec in records])


@dataclass(frozen=True)
class EvoKDSummary(SummaryJson):
    """What `evokd_distillation` returns and writes as summary.json: the run's method, task and
    seeds, one row per round (`summary_rows`), why it ended, the last evaluation (`final`),
    teacher tokens and USD over the run, the examples trained on, then this invocation's teacher
    requests and wall time (`Invocation`, its keys last in summary.json)."""

    run_name: str
    method: str
    task: str
    k_shot: int
    seed: int
    rounds: list[dict]
    stopped: str
    final: dict
    teacher_tokens: int
    cost_usd: float
    train_examples_total: int
    prompt_version: str
    invocation: Invocation
