"""Teacher budgets: estimate a round's teacher tokens and dollars, refuse what would overspend.

docs/design.md §2 ("stopping: ... a teacher-token / dollar budget"). Pure: no I/O, no Prefect;
token counting and prices come in as callables (the teacher client's).

Estimates, per annotation of one annotator:
* measured: the mean over earlier rounds that used the same annotator (tokens and $ as
  recorded in their manifests) — what every round after the first of its kind uses;
* a priori, for the first round of an annotator: the mean prompt tokens of the pool's CoT
  requests (counted with the teacher's tokenizer) plus `completion_tokens` per call (with the
  oracle teacher and the pool's gold solutions at hand: their mean tokens, which is what the
  oracle replies). `clear` and `clear_single` are one request each (since prompt v2 a CLEAR
  turn judges every judged student step, elad_core.elad.annotators): the CoT prompt plus their
  longer instructions (counted) and STUDENT_TOKENS of student steps, the CoT completion plus
  VERDICT_TOKENS (CLEAR's "Step n: Yes. <own version>" lines) or JSON_TOKENS (clear_single);
* after a measured `cot` round, `clear` / `clear_single` are that round's measured mean plus
  the same differences: the teacher's real verbosity replaces `completion_tokens`.

Measured on SmolLM2-135M-Instruct's GSM8K explanations with the oracle teacher
(benchmarks/clear_cost.py): a-priori estimates within 6% of the spend for all three
annotators (cot: with the gold solutions' length; with the default 256 completion tokens it is
1.6x over), measured ones within 13%.

A run stops at a round boundary when the round's estimate would take the run (or the round)
past a limit; inside a round, teacher batches stop once the next one would (its estimate
from what the round's earlier batches actually cost, times BATCH_MARGIN: a batch that costs up
to 25% more than estimated still stays within the budget).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# a priori tokens of the student steps one clear / clear_single request carries (they are cut
# at CLEAR_MAX_CHARS = 600 characters, ~150 tokens; SmolLM2-135M-Instruct measured 70-90 with
# their "Step n:" labels)
STUDENT_TOKENS = 85
VERDICT_TOKENS = 45  # CLEAR's verdict lines beyond the CoT solution (measured 36-58)
JSON_TOKENS = 15  # clear_single's JSON keys beyond the CoT solution (measured 13-17)
# instruction tokens of a clear / clear_single request beyond a CoT request's (gpt-3.5-turbo's
# tokenizer; estimator_for counts them with the teacher's)
CLEAR_PROMPT_EXTRA = 66
SINGLE_PROMPT_EXTRA = 47
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


class Estimator:
    """Per-annotation teacher usage, measured from earlier rounds or a priori.

    cot_prompt_tokens: mean prompt tokens of a CoT request over the pool's questions.
    completion_tokens: assumed completion tokens per call (teacher.completion_tokens_estimate,
    or the oracle's gold solutions' mean). price_usd: (prompt_tokens, completion_tokens) -> USD.
    clear_prompt_extra / single_prompt_extra: instruction tokens of a clear / clear_single
    request beyond a CoT request's.
    """

    def __init__(self, cot_prompt_tokens: float, completion_tokens: float,
                 price_usd: Callable[[float, float], float],
                 clear_prompt_extra: float = CLEAR_PROMPT_EXTRA,
                 single_prompt_extra: float = SINGLE_PROMPT_EXTRA):
        self.cot_prompt_tokens = cot_prompt_tokens
        self.completion_tokens = completion_tokens
        self.price_usd = price_usd
        self.clear_prompt_extra = clear_prompt_extra
        self.single_prompt_extra = single_prompt_extra

    def _beyond_cot(self, annotator: str) -> tuple[float, float]:
        """(prompt, completion) tokens one annotation costs beyond one CoT call."""
        if annotator == "clear":
            return self.clear_prompt_extra + STUDENT_TOKENS, VERDICT_TOKENS
        if annotator == "clear_single":
            return self.single_prompt_extra + STUDENT_TOKENS, JSON_TOKENS
        return 0.0, 0.0

    def a_priori(self, annotator: str) -> Usage:
        """Usage of one annotation with no round of `annotator` measured yet: one call, the
        CoT prompt and completion plus what `annotator` adds (`_beyond_cot`)."""
        extra_prompt, extra_completion = self._beyond_cot(annotator)
        prompt = self.cot_prompt_tokens + extra_prompt
        completion = self.completion_tokens + extra_completion
        return Usage(prompt + completion, self.price_usd(prompt, completion))

    def per_annotation(self, annotator: str, history: list[dict]) -> tuple[Usage, str]:
        """(usage of one annotation, basis). history: earlier rounds' records, each with
        annotator, selected, teacher_tokens, cost_usd (the manifests). Measured when a round
        of `annotator` was; else, for clear / clear_single after a measured cot round, that
        round's mean plus what the annotator adds; else a priori."""
        same = [r for r in history if r["annotator"] == annotator]
        n = sum(r.get("annotated", r["selected"]) for r in same)
        if n:
            return measured_mean(same, n), f"measured: mean of {n} {annotator} annotations"
        what = {"cot": "", "clear": f", clear: +{STUDENT_TOKENS} student-step tokens",
                "clear_single": f", clear_single: +{STUDENT_TOKENS} student-step tokens"}.get(
                    annotator, "")
        cot = [r for r in history if r["annotator"] == "cot"]
        n_cot = sum(r.get("annotated", r["selected"]) for r in cot)
        if n_cot and annotator != "cot":
            extra_prompt, extra_completion = self._beyond_cot(annotator)
            per = measured_mean(cot, n_cot) + Usage(
                extra_prompt + extra_completion, self.price_usd(extra_prompt, extra_completion))
            return per, f"a priori: measured mean of {n_cot} cot annotations{what}"
        return self.a_priori(annotator), (
            f"a priori: {self.cot_prompt_tokens:.0f} prompt tokens per question, "
            f"{self.completion_tokens:.0f} completion tokens per call{what}")

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


def estimator_for(cfg, questions: list[str], sample: int = 200,
                  solutions: list[str] | None = None) -> Estimator:
    """An Estimator for TeacherConfig `cfg`: CoT prompt tokens counted with the teacher's
    tokenizer over the first `sample` questions, clear's and clear_single's extra instruction
    tokens likewise, its prices (no key is needed or read).

    solutions: the pool's gold solutions ("<steps>\n#### <answer>"), where it has them: with
    the oracle teacher, which replies with exactly these, their mean token count is the
    completion estimate; otherwise teacher.completion_tokens_estimate is.
    """
    from elad_core.elad import prompts
    from elad_core.teacher.pricing import pricing_client

    client = pricing_client(cfg)
    counted = [client.count_prompt_tokens(prompts.cot_messages(q)) for q in questions[:sample]]
    completion: float = cfg.completion_tokens_estimate
    if cfg.model == "oracle" and solutions:
        import litellm

        from elad_core.teacher.oracle.judge import TOKENIZER_MODEL

        lengths = [litellm.token_counter(model=TOKENIZER_MODEL, text=s)
                   for s in solutions[:sample] if s]
        completion = sum(lengths) / len(lengths) if lengths else completion
    cot = client.count_prompt_tokens(prompts.cot_messages(""))
    clear = client.count_prompt_tokens(prompts.clear_chunk_messages("", [], [], True))
    single = client.count_prompt_tokens(prompts.clear_single_messages("", []))
    return Estimator(sum(counted) / max(1, len(counted)), completion, client.price_usd,
                     clear_prompt_extra=clear - cot, single_prompt_extra=single - cot)


def gold_solutions(examples: list) -> list[str]:
    """The oracle's CoT replies to `examples` (Example records with gold rationale and answer):
    "<steps>\n#### <answer>", for estimator_for's `solutions`; [] when they have no gold."""
    from elad_core.elad import prompts

    return [prompts.student_target(e.rationale, e.answer) for e in examples
            if getattr(e, "answer", None) is not None]


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
