"""Teacher budgets: estimate a round's teacher tokens and dollars, refuse what would overspend.

docs/design.md §2 ("stopping: ... a teacher-token / dollar budget"). Pure: no I/O, no Prefect;
token counting and prices come in as callables (the teacher client's).

Estimates, per annotation of one annotator:
* measured: the mean over earlier rounds that used the same annotator (tokens and $ as
  recorded in their manifests) — what every round after the first of its kind uses;
* a priori, for the first round of an annotator: the mean prompt tokens of the pool's CoT
  requests (counted with the teacher's tokenizer) plus `completion_tokens` per call; a CLEAR
  dialogue is modelled as CLEAR_TURNS calls whose prompt grows by the earlier turns
  (STEP_TOKENS per proposed step and per accepted-step reply). Deliberately on the high side:
  a budget should stop a run early rather than late.

A run stops at a round boundary when the round's estimate would take the run (or the round)
past a limit; inside a round, teacher batches stop once the next one would (its estimate
from what the round's earlier batches actually cost).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLEAR_TURNS = 3  # a priori calls per CLEAR dialogue (GSM8K solutions: ~3 steps, early "No"s)
STEP_TOKENS = 40  # a priori tokens of one proposed step message or one "Yes. <step>" reply


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


class Estimator:
    """Per-annotation teacher usage, measured from earlier rounds or a priori.

    cot_prompt_tokens: mean prompt tokens of a CoT request over the pool's questions.
    completion_tokens: assumed completion tokens per call (teacher.completion_tokens_estimate).
    price_usd: (prompt_tokens, completion_tokens) -> USD.
    """

    def __init__(self, cot_prompt_tokens: float, completion_tokens: int,
                 price_usd: Callable[[float, float], float]):
        self.cot_prompt_tokens = cot_prompt_tokens
        self.completion_tokens = completion_tokens
        self.price_usd = price_usd

    def a_priori(self, annotator: str) -> Usage:
        """Usage of one annotation with no round of `annotator` measured yet."""
        p, c = self.cot_prompt_tokens, self.completion_tokens
        if annotator == "cot":
            prompt, completion = p, c
        elif annotator == "clear_single":  # one call carrying CLEAR_TURNS student steps
            prompt, completion = p + STEP_TOKENS * CLEAR_TURNS, c
        else:  # turn t resends the first prompt plus 2 (t-1) step messages
            t = CLEAR_TURNS
            prompt = t * (p + STEP_TOKENS) + STEP_TOKENS * t * (t - 1)
            completion = (t - 1) * STEP_TOKENS + c
        return Usage(prompt + completion, self.price_usd(prompt, completion))

    def per_annotation(self, annotator: str, history: list[dict]) -> tuple[Usage, str]:
        """(usage of one annotation, basis). history: earlier rounds' records, each with
        annotator, selected, teacher_tokens, cost_usd (the manifests)."""
        same = [r for r in history if r["annotator"] == annotator]
        n = sum(r.get("annotated", r["selected"]) for r in same)
        if n:
            return measured_mean(same, n), f"measured: mean of {n} {annotator} annotations"
        return self.a_priori(annotator), (
            f"a priori: {self.cot_prompt_tokens:.0f} prompt tokens per question, "
            f"{self.completion_tokens} completion tokens per call"
            + {"cot": "", "clear_single": f", {CLEAR_TURNS} student steps in one call"}.get(
                annotator, f", {CLEAR_TURNS} CLEAR turns"))

    def round(self, round_index: int, annotator: str, questions: int,
              history: list[dict]) -> RoundEstimate:
        """The estimate of round `round_index` annotating `questions` questions."""
        per, basis = self.per_annotation(annotator, history)
        return RoundEstimate(round_index, annotator, questions, per, basis)


def round_sizes(rounds: int, seed_size: int, per_round: int, pool_size: int,
                start: int = 0) -> list[tuple[int, int]]:
    """[(round index, questions to annotate)] for rounds start..rounds-1 (0 when the pool
    is exhausted): round 0 annotates seed_size, later rounds per_round."""
    left = pool_size - sum(seed_size if r == 0 else per_round for r in range(start))
    out = []
    for r in range(start, rounds):
        n = max(0, min(seed_size if r == 0 else per_round, left))
        out.append((r, n))
        left -= n
    return out


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
    batch is estimated at this round's measured mean per question, or `fallback` before any.
    """
    per = round_spent * (1 / done) if done else fallback
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


def estimator_for(cfg, questions: list[str], sample: int = 200) -> Estimator:
    """An Estimator for TeacherConfig `cfg`: CoT prompt tokens counted with the teacher's
    tokenizer over the first `sample` questions, its prices (no key is needed or read)."""
    from elad_core.elad import prompts
    from elad_core.teacher.pricing import pricing_client

    client = pricing_client(cfg)
    counted = [client.count_prompt_tokens(prompts.cot_messages(q)) for q in questions[:sample]]
    return Estimator(sum(counted) / max(1, len(counted)), cfg.completion_tokens_estimate,
                     client.price_usd)


def plan_rounds(config, estimator: Estimator, pool_size: int,
                history: list[dict]) -> list[tuple[RoundEstimate, str | None]]:
    """The rounds still to run after `history`, each with its estimate and the budget's
    refusal (None = it fits), spending each estimate in turn; ends at the first refusal,
    where the run would stop (docs/design.md §2 stopping rule)."""
    budget = Budget.from_config(config)
    spent = Usage(sum(r["teacher_tokens"] for r in history), sum(r["cost_usd"] for r in history))
    sel, teacher = config.selection, config.teacher
    out = []
    for r, n in round_sizes(config.rounds, sel.seed_size, sel.per_round, pool_size,
                            start=len(history)):
        annotator = teacher.seed_annotator if r == 0 else teacher.annotator
        est = estimator.round(r, annotator, n, history)
        why = round_refusal(budget, est, spent) if n else "pool exhausted"
        out.append((est, why))
        if why is not None:  # the run stops here
            break
        spent = spent + est.usage
    return out


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
