"""ELAD's teacher-cost estimates: a round's teacher tokens and dollars before it runs.

docs/design.md §2.6. The budget they are checked against is elad_core.budget.

Estimates, per annotation of one annotator:
* measured: the mean over earlier rounds that used the same annotator (tokens and $ as
  recorded in their manifests) — what every round after the first of its kind uses;
* a priori, for the first round of an annotator: the mean prompt tokens of the pool's CoT
  requests (counted with the teacher's tokenizer) plus `completion_tokens` per call (with the
  oracle teacher and the pool's gold solutions at hand: their mean tokens, which is what the
  oracle replies). `clear` and `clear_single` are one request each (since prompt v2 a CLEAR
  turn judges every judged student step, elad_core.elad.annotators): the CoT prompt plus their
  longer instructions (counted) and the student's steps, the CoT completion plus
  VERDICT_TOKENS (CLEAR's "Step n: Yes. <own version>" lines) or JSON_TOKENS (clear_single).
  The student's steps: where the pool has gold solutions, their mean tokens (the student is
  trained to write like them; at most MAX_STUDENT_TOKENS, the CLEAR_MAX_CHARS cut), else
  STUDENT_TOKENS;
* after a measured `cot` round, `clear` / `clear_single` are that round's measured mean plus
  the same differences: the teacher's real verbosity replaces `completion_tokens`.

Measured with the oracle teacher (docs/design.md §5.7): on SmolLM2-135M-Instruct's GSM8K
explanations (benchmarks/clear_cost.py) a-priori estimates within 6% of the spend with
STUDENT_TOKENS (cot: with the gold solutions' length; with the default 256 completion tokens
it is 1.6x over), measured ones within 13%; in the real-student job (examples/real-student.yaml,
arithmetic) round 1's clear estimate was 27% over with STUDENT_TOKENS, 15% with the gold
solutions' length.
"""

from __future__ import annotations

from collections.abc import Callable

from elad_core.budget import Budget, RoundEstimate, Usage, measured_mean, round_refusal
from elad_core.elad.plan import plan_rounds

# a priori tokens of the student steps one clear / clear_single request carries (they are cut
# at CLEAR_MAX_CHARS = 600 characters, ~150 tokens; SmolLM2-135M-Instruct measured 70-90 with
# their "Step n:" labels)
STUDENT_TOKENS = 85
MAX_STUDENT_TOKENS = 150
VERDICT_TOKENS = 45  # CLEAR's verdict lines beyond the CoT solution (measured 36-58)
JSON_TOKENS = 15  # clear_single's JSON keys beyond the CoT solution (measured 13-17)
# instruction tokens of a clear / clear_single request beyond a CoT request's (gpt-3.5-turbo's
# tokenizer; estimator_for counts them with the teacher's)
CLEAR_PROMPT_EXTRA = 66
SINGLE_PROMPT_EXTRA = 47

class Estimator:
    """Per-annotation teacher usage, measured from earlier rounds or a priori.

    cot_prompt_tokens: mean prompt tokens of a CoT request over the pool's questions.
    completion_tokens: assumed completion tokens per call (teacher.completion_tokens_estimate,
    or the oracle's gold solutions' mean). price_usd: (prompt_tokens, completion_tokens) -> USD.
    clear_prompt_extra / single_prompt_extra: instruction tokens of a clear / clear_single
    request beyond a CoT request's. student_tokens: tokens of the student steps one clear /
    clear_single request carries.
    """

    def __init__(self, cot_prompt_tokens: float, completion_tokens: float,
                 price_usd: Callable[[float, float], float],
                 clear_prompt_extra: float = CLEAR_PROMPT_EXTRA,
                 single_prompt_extra: float = SINGLE_PROMPT_EXTRA,
                 student_tokens: float = STUDENT_TOKENS):
        self.cot_prompt_tokens = cot_prompt_tokens
        self.completion_tokens = completion_tokens
        self.price_usd = price_usd
        self.clear_prompt_extra = clear_prompt_extra
        self.single_prompt_extra = single_prompt_extra
        self.student_tokens = student_tokens

    def _beyond_cot(self, annotator: str) -> tuple[float, float]:
        """(prompt, completion) tokens one annotation costs beyond one CoT call."""
        if annotator == "clear":
            return self.clear_prompt_extra + self.student_tokens, VERDICT_TOKENS
        if annotator == "clear_single":
            return self.single_prompt_extra + self.student_tokens, JSON_TOKENS
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
        what = (f", {annotator}: +{self.student_tokens:.0f} student-step tokens"
                if annotator in ("clear", "clear_single") else "")
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


def estimator_for(cfg, questions: list[str], sample: int = 200,
                  solutions: list[str] | None = None) -> Estimator:
    """An Estimator for TeacherConfig `cfg`: CoT prompt tokens counted with the teacher's
    tokenizer over the first `sample` questions, clear's and clear_single's extra instruction
    tokens likewise, its prices (no key is needed or read).

    solutions: the pool's gold solutions ("<steps>\n#### <answer>"), where it has them: their
    mean token count is the student steps' estimate (at most MAX_STUDENT_TOKENS), and with the
    oracle teacher, which replies with exactly these, the completion estimate; otherwise
    STUDENT_TOKENS and teacher.completion_tokens_estimate are.
    """
    from elad_core.elad import prompts
    from elad_core.teacher.pricing import pricing_client

    client = pricing_client(cfg)
    counted = [client.count_prompt_tokens(prompts.cot_messages(q)) for q in questions[:sample]]
    completion: float = cfg.completion_tokens_estimate
    student: float = STUDENT_TOKENS
    if cfg.model == "oracle":  # its replies are counted with its own fixed tokenizer
        import litellm

        from elad_core.teacher.oracle.judging import TOKENIZER_MODEL

        count = lambda text: litellm.token_counter(model=TOKENIZER_MODEL, text=text)  # noqa: E731
    else:
        count = client.count_text_tokens
    lengths = [count(s) for s in (solutions or [])[:sample] if s]
    if lengths:
        student = min(sum(lengths) / len(lengths), MAX_STUDENT_TOKENS)
        if cfg.model == "oracle":
            completion = sum(lengths) / len(lengths)
    cot = client.count_prompt_tokens(prompts.cot_messages(""))
    clear = client.count_prompt_tokens(prompts.clear_chunk_messages("", [], [], True))
    single = client.count_prompt_tokens(prompts.clear_single_messages("", []))
    return Estimator(sum(counted) / max(1, len(counted)), completion, client.price_usd,
                     clear_prompt_extra=clear - cot, single_prompt_extra=single - cot,
                     student_tokens=student)


def gold_solutions(examples: list) -> list[str]:
    """The oracle's CoT replies to `examples` (Example records with gold rationale and answer):
    "<steps>\n#### <answer>", for estimator_for's `solutions`; [] when they have no gold."""
    from elad_core.explanations.prompt import student_target

    return [student_target(e.rationale, e.answer) for e in examples
            if getattr(e, "answer", None) is not None]


def estimate_rounds(config, estimator: Estimator, pool_size: int,
                    history: list[dict]) -> list[tuple[RoundEstimate, str | None]]:
    """The rounds still to run after `history`, each with its estimate and the budget's
    refusal (None = it fits), spending each estimate in turn; ends at the first refusal,
    where the run would stop (docs/design.md §2 stopping rule)."""
    budget = Budget.from_config(config)
    spent = Usage(sum(r["teacher_tokens"] for r in history), sum(r["cost_usd"] for r in history))
    out = []
    for plan in plan_rounds(config, pool_size, start=len(history)):
        est = estimator.round(plan.round_index, plan.annotator, plan.questions, history)
        why = round_refusal(budget, est, spent) if plan.questions else "pool exhausted"
        out.append((est, why))
        if why is not None:  # the run stops here
            break
        spent = spent + est.usage
    return out
