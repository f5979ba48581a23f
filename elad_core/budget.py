"""Teacher budgets: refuse what would overspend (docs/design.md §2 "stopping: ... a teacher-token /
dollar budget"), for every method. Pure: no I/O beyond reading manifests, no Prefect.

A run stops at a round boundary when the round's estimate (each method's own estimator:
elad_core.elad.cost, EvoKD's measured mean) would take the run (or the round) past a limit;
inside a round, teacher batches stop once the next one would (its estimate from what the
round's earlier batches actually cost, times BATCH_MARGIN: a batch that costs up to 25% more
than estimated still stays within the budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# the next teacher batch of a round is priced at its estimate times this: the estimates come
# within 25% of the spend, so a batch costing more than estimated still fits the budget
BATCH_MARGIN = 1.25


@dataclass(frozen=True)
class Usage:
    """Teacher tokens (prompt + completion) and US dollars."""

    teacher_tokens: float = 0.0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.teacher_tokens + other.teacher_tokens, self.cost_usd + other.cost_usd)

    def __mul__(self, n: float) -> Usage:
        return Usage(self.teacher_tokens * n, self.cost_usd * n)


@dataclass(frozen=True)
class RoundEstimate:
    """Estimated teacher spend of one round: `questions` × `per_annotation`; basis says how."""

    round_index: int
    annotator: str
    questions: int
    per_annotation: Usage
    basis: str

    @property
    def usage(self) -> Usage:
        return self.per_annotation * self.questions


@dataclass(frozen=True)
class Budget:
    """Limits on teacher spend (None = no limit): for the whole run and for each round."""

    max_teacher_tokens: int | None = None
    max_cost_usd: float | None = None
    max_round_teacher_tokens: int | None = None
    max_round_cost_usd: float | None = None

    @classmethod
    def from_config(cls, config) -> Budget:
        """From a RunConfig's max_teacher_tokens, max_cost_usd, max_round_*."""
        return cls(config.max_teacher_tokens, config.max_cost_usd,
                   config.max_round_teacher_tokens, config.max_round_cost_usd)

    def refusal(self, spent: Usage, next_spend: Usage, round_spent: Usage = Usage()) -> str | None:
        """Why spending `next_spend` now would break a limit (one line naming it), else None.

        spent: the run's spend so far (round_spent included); round_spent: this round's so far.
        """
        checks = [
            ("max_teacher_tokens", self.max_teacher_tokens, spent.teacher_tokens,
             next_spend.teacher_tokens, "the run"),
            ("max_cost_usd", self.max_cost_usd, spent.cost_usd, next_spend.cost_usd, "the run"),
            ("max_round_teacher_tokens", self.max_round_teacher_tokens,
             round_spent.teacher_tokens, next_spend.teacher_tokens, "this round"),
            ("max_round_cost_usd", self.max_round_cost_usd, round_spent.cost_usd,
             next_spend.cost_usd, "this round"),
        ]
        for option, limit, used, more, scope in checks:
            if limit is not None and used + more > limit:
                return (f"{_fmt(option, more)} more would take {scope} to "
                        f"{_fmt(option, used + more)}, over {option}={limit:g} "
                        f"(spent so far: {_fmt(option, used)})")
        return None


def _fmt(option: str, value: float) -> str:
    return f"${value:.4f}" if "cost" in option else f"{value:,.0f} teacher tokens"


def measured_mean(records: list[dict], units: int) -> Usage:
    """The measured spend per unit: the records' teacher_tokens and cost_usd summed, over
    `units` (> 0): ELAD's annotations of a kind, EvoKD's teacher rounds. Both methods'
    estimates are this mean once something was measured, an a-priori count before."""
    return Usage(sum(r["teacher_tokens"] for r in records) / units,
                 sum(r["cost_usd"] for r in records) / units)


def round_refusal(budget: Budget, estimate: RoundEstimate, spent: Usage) -> str | None:
    """Why round `estimate.round_index` must not start (a one-line message), else None."""
    why = budget.refusal(spent, estimate.usage)
    if why is None:
        return None
    return (f"budget: round {estimate.round_index} ({estimate.questions} questions, "
            f"{estimate.annotator}) would spend an estimated {estimate.usage.teacher_tokens:,.0f} "
            f"teacher tokens / ${estimate.usage.cost_usd:.4f} ({estimate.basis}); {why}")


def batch_refusal(budget: Budget, spent_before_round: Usage, round_spent: Usage, done: int,
                  fallback: Usage, batch_questions: int) -> str | None:
    """Inside a round: why the next teacher batch must not be sent, else None.

    done: questions of this round annotated so far (their cost is round_spent); the next
    batch is estimated at this round's measured mean per question, or `fallback` before any,
    times BATCH_MARGIN.
    """
    per = (round_spent * (1 / done) if done else fallback) * BATCH_MARGIN
    why = budget.refusal(spent_before_round + round_spent, per * batch_questions, round_spent)
    if why is None:
        return None
    return f"budget: stopped annotating after {done} questions of this round; {why}"


class BatchGate:
    """The budget check before each teacher batch of a round (docs/design.md §2.6): `allows`
    says whether a batch of n questions may be sent (else `stop` says why), `add` books what a
    sent batch cost. spent_before_round: the earlier rounds' spend; per_annotation: the
    estimate used until this round has measured its own mean."""

    def __init__(self, budget: Budget, spent_before_round: Usage, per_annotation: Usage):
        self.budget, self.before, self.fallback = budget, spent_before_round, per_annotation
        self.spent, self.done, self.stop = Usage(), 0, None

    def allows(self, n: int) -> bool:
        self.stop = batch_refusal(self.budget, self.before, self.spent, self.done,
                                  self.fallback, n)
        return self.stop is None

    def add(self, teacher_tokens: float, cost_usd: float, n: int) -> None:
        self.spent, self.done = self.spent + Usage(teacher_tokens, cost_usd), self.done + n


def read_history(run_dir: Path) -> list[dict]:
    """Round records (manifest.json) of the rounds a run folder already holds, in order."""
    out = []
    for path in sorted(Path(run_dir).glob("round_[0-9][0-9][0-9]/manifest.json")):
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def with_cumulative_tokens(rows: list[dict]) -> list[dict]:
    """`rows` (round order, each with `teacher_tokens`), each with `cumulative_teacher_tokens`
    added: the teacher tokens of that round and all before it (the x axis of both methods'
    curves in summary.json)."""
    total, out = 0, []
    for row in rows:
        total += row["teacher_tokens"]
        out.append({**row, "cumulative_teacher_tokens": total})
    return out
