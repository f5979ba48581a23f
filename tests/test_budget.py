"""Teacher budgets (issue #4): estimates, refusals at round and batch level, `elad plan`, and a
run whose budget is smaller than one round stopping before its first teacher call."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import tiny_config
from typer.testing import CliRunner

from elad_core.budget import BATCH_MARGIN, BatchGate, Budget, Usage, batch_refusal, round_refusal
from elad_core.elad.cost import (
    CLEAR_PROMPT_EXTRA,
    Estimator,
    JSON_TOKENS,
    SINGLE_PROMPT_EXTRA,
    MAX_STUDENT_TOKENS,
    STUDENT_TOKENS,
    VERDICT_TOKENS,
    estimate_rounds,
    estimator_for,
)
from elad_core.elad.config import RunConfig
from elad_core.elad.plan import plan_rounds


def _price(prompt: float, completion: float) -> float:
    return (prompt * 1.0 + completion * 2.0) / 1e6  # $1 / $2 per 1M tokens


def test_a_priori_estimates():
    est = Estimator(cot_prompt_tokens=100, completion_tokens=200, price_usd=_price)
    cot = est.a_priori("cot")
    assert cot == Usage(300, (100 + 400) / 1e6)  # one call: prompt + completion
    # clear (prompt v2): one request judging the student's steps: the CoT prompt + its longer
    # instructions + the student's steps; the CoT completion + the verdict lines
    clear = est.a_priori("clear")
    prompt, completion = 100 + CLEAR_PROMPT_EXTRA + STUDENT_TOKENS, 200 + VERDICT_TOKENS
    assert clear == Usage(prompt + completion, _price(prompt, completion))
    single = est.a_priori("clear_single")
    prompt, completion = 100 + SINGLE_PROMPT_EXTRA + STUDENT_TOKENS, 200 + JSON_TOKENS
    assert single == Usage(prompt + completion, _price(prompt, completion))
    assert cot.teacher_tokens < single.teacher_tokens < clear.teacher_tokens < 2 * cot.teacher_tokens


def test_clear_after_a_measured_cot_round_uses_its_mean():
    """Round 1's clear estimate after a cot seed round: the measured CoT mean (the teacher's
    real verbosity) plus what clear adds, not the a-priori completion guess (issue #21)."""
    est = Estimator(100, 256, _price)
    history = [{"annotator": "cot", "selected": 10, "annotated": 10, "teacher_tokens": 2400,
                "cost_usd": 0.01}]
    per, basis = est.per_annotation("clear", history)
    extra_prompt, extra_completion = CLEAR_PROMPT_EXTRA + STUDENT_TOKENS, VERDICT_TOKENS
    assert per.teacher_tokens == 240 + extra_prompt + extra_completion
    assert per.cost_usd == pytest.approx(0.001 + _price(extra_prompt, extra_completion))
    assert basis.startswith("a priori: measured mean of 10 cot annotations")
    assert est.per_annotation("cot", [])[0] == est.a_priori("cot")


def test_student_steps_are_estimated_from_the_gold_solutions_where_the_pool_has_them():
    from elad_core.teacher.config import TeacherConfig

    questions = ["What is 2 + 3?", "What is 4 * 5?"]
    short = ["2 + 3 = 5\n#### 5", "4 * 5 = 20\n#### 20"]
    assert estimator_for(TeacherConfig(), questions).student_tokens == STUDENT_TOKENS
    est = estimator_for(TeacherConfig(), questions, solutions=short)
    assert 5 < est.student_tokens < 20 and est.completion_tokens == est.student_tokens
    clear, cot = est.a_priori("clear").teacher_tokens, est.a_priori("cot").teacher_tokens
    assert clear - cot == pytest.approx(est.clear_prompt_extra + est.student_tokens
                                        + VERDICT_TOKENS)
    long = ["step " * 400 + "\n#### 1"] * 2  # cut at CLEAR_MAX_CHARS: never more than the cap
    assert estimator_for(TeacherConfig(), questions, solutions=long).student_tokens == \
        MAX_STUDENT_TOKENS


def test_measured_estimates_use_the_same_annotator_only():
    est = Estimator(100, 200, _price)
    history = [{"annotator": "cot", "selected": 10, "annotated": 10, "teacher_tokens": 2500,
                "cost_usd": 0.01},
               {"annotator": "clear", "selected": 4, "annotated": 2, "teacher_tokens": 1000,
                "cost_usd": 0.002}]
    per, basis = est.per_annotation("cot", history)
    assert per == Usage(250, 0.001) and "measured: mean of 10 cot" in basis
    per, basis = est.per_annotation("clear", history)
    assert per == Usage(500, 0.001)  # divided by the 2 annotated, not the 4 selected
    assert est.per_annotation("clear", history[:1])[1].startswith("a priori")


def test_refusal_names_the_option_and_the_numbers():
    b = Budget(max_teacher_tokens=1000, max_round_cost_usd=0.5)
    assert b.refusal(Usage(400, 0), Usage(600, 0)) is None  # exactly at the limit is allowed
    why = b.refusal(Usage(400, 0), Usage(601, 0))
    assert "max_teacher_tokens=1000" in why and "1,001 teacher tokens" in why
    why = b.refusal(Usage(0, 10.0), Usage(0, 0.3), round_spent=Usage(0, 0.3))
    assert "max_round_cost_usd=0.5" in why and "this round" in why  # run $: no limit set
    assert Budget().refusal(Usage(1e9, 1e9), Usage(1e9, 1e9)) is None


def test_round_and_batch_refusals():
    est = Estimator(100, 200, _price).round(0, "cot", 8, [])
    assert round_refusal(Budget(max_teacher_tokens=2400), est, Usage()) is None  # 8 x 300
    why = round_refusal(Budget(max_teacher_tokens=2399), est, Usage())
    assert why.startswith("budget: round 0 (8 questions, cot) would spend an estimated 2,400")
    # inside a round the next batch is priced at what this round's batches actually cost
    # (times BATCH_MARGIN, so a batch up to 25% dearer than its estimate still fits)
    b = Budget(max_teacher_tokens=2000)
    assert batch_refusal(b, Usage(1000), Usage(400), 4, Usage(300), 4) is None  # 100 each
    why = batch_refusal(b, Usage(1000), Usage(800), 4, Usage(300), 4)  # 200 each -> 2600
    assert why.startswith("budget: stopped annotating after 4 questions of this round")
    # 4 more at 100 each fit exactly, but not with the margin: 1000 + 400 + 4 x 125 > 1800
    b = Budget(max_teacher_tokens=1800)
    assert BATCH_MARGIN == 1.25 and batch_refusal(b, Usage(1000), Usage(400), 4, Usage(300), 4)


def test_a_round_run_on_its_own_builds_its_budget_state(tmp_path):
    """distill_round without the loop's budget state (issue #14) builds it from the run
    folder's manifests, so its batches are still checked against the budgets."""
    from elad_core.explanations.records import Example
    from elad_core.elad.state import DataRefs, RoundState, StudentRef
    from flows.elad.round_budget import budget_from_run_folder

    cfg = RunConfig.model_validate(tiny_config(tmp_path, max_teacher_tokens=5000))
    round0 = cfg.run_dir / "round_000"
    round0.mkdir(parents=True)
    # round 0 spent 4,000 tokens on 8 CoT annotations; a later round's manifest is ignored
    (round0 / "manifest.json").write_text(json.dumps(
        {"round": 0, "annotator": "cot", "selected": 8, "annotated": 8,
         "teacher_tokens": 4000, "cost_usd": 0.0}))
    (cfg.run_dir / "round_002").mkdir()
    (cfg.run_dir / "round_002" / "manifest.json").write_text(json.dumps(
        {"round": 2, "annotator": "clear", "selected": 4, "teacher_tokens": 10**6,
         "cost_usd": 0.0}))
    pool = [Example(f"q{i}", f"What is {i} + {i}?", "", str(2 * i)) for i in range(24)]
    state = RoundState(data=DataRefs(pool="p", pool_sha="s", eval="e", eval_sha="t"),
                       student=StudentRef(base="b", base_sha="b"),
                       annotated=tuple(f"q{i}" for i in range(8)))
    plan = budget_from_run_folder(cfg, 1, state, pool)
    assert plan.spent == Usage(4000, 0.0)
    assert plan.per_annotation.teacher_tokens > 0 and plan.estimate["basis"].startswith("a priori")
    # 1,000 tokens left: a CLEAR batch of 4 (estimated a priori) is refused before it is sent
    why = batch_refusal(Budget.from_config(cfg), plan.spent, Usage(), 0, plan.per_annotation, 4)
    assert why and "max_teacher_tokens=5000" in why
    gate = BatchGate(Budget.from_config(cfg), plan.spent, plan.per_annotation)
    assert not gate.allows(4) and gate.stop == why


def test_round_plans_stop_at_an_exhausted_pool(tmp_path):
    cfg = RunConfig.model_validate(tiny_config(tmp_path, rounds=4))
    sizes = lambda pool, start=0: [(p.round_index, p.questions)  # noqa: E731
                                   for p in plan_rounds(cfg, pool, start)]
    assert (cfg.selection.seed_size, cfg.selection.per_round) == (8, 4)
    assert sizes(20) == [(0, 8), (1, 4), (2, 4), (3, 4)]
    assert sizes(14) == [(0, 8), (1, 4), (2, 2), (3, 0)]
    assert sizes(20, start=2) == [(2, 4), (3, 4)]
    plans = plan_rounds(cfg, 20)
    assert (plans[0].selector, plans[0].annotator) == ("random", cfg.teacher.seed_annotator)
    assert (plans[1].selector, plans[1].annotator) == (cfg.selection.selector,
                                                         cfg.teacher.annotator)


def test_plan_ends_at_the_first_round_that_does_not_fit(tmp_path):
    cfg = RunConfig.model_validate(tiny_config(tmp_path, rounds=4, max_teacher_tokens=5000))
    est = Estimator(100, 200, _price)
    rows = estimate_rounds(cfg, est, 24, [])
    # round 0: 8 cot x 300 = 2400 fits; round 1: 4 clear annotations (466 each a priori) fit
    # in the 2600 left; round 2's do not fit in the 736 left then
    assert [(e.round_index, e.questions, why is None) for e, why in rows] == [
        (0, 8, True), (1, 4, True), (2, 4, False)]
    assert "max_teacher_tokens=5000" in rows[-1][1]


runner = CliRunner()


def test_elad_plan_estimates_and_writes_nothing(tmp_path):
    from flows.cli import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, max_teacher_tokens=100)))
    res = runner.invoke(app, ["plan", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert "est. tokens" in res.output and "a priori" in res.output
    assert "would stop before round 0" in res.output and "max_teacher_tokens=100" in res.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_budget_smaller_than_one_round_stops_before_the_first_teacher_call(
        prefect_harness, tmp_path):
    from flows.elad.loop import active_distillation

    cfg = RunConfig.model_validate(tiny_config(tmp_path, run_name="budget-stop",
                                               max_teacher_tokens=500))
    summary = active_distillation(cfg)
    assert summary.rounds == [] and summary.invocation.teacher_requests_sent == 0
    assert summary.stopped.startswith("stopped before round 0: budget: round 0")
    assert "max_teacher_tokens=500" in summary.stopped
    # the oracle never saw a request; no round folder was started
    log = cfg.run_dir / "oracle_requests.jsonl"
    assert not log.exists() or log.read_text() == ""
    assert not list(cfg.run_dir.glob("round_*"))
    assert json.loads((cfg.run_dir / "summary.json").read_text())["stopped"] == summary.stopped


def test_a_dollar_budget_needs_prices():
    from elad_core.elad.config import load_config
    from elad_core.teacher.preflight import check_teacher
    from elad_core.errors import ConfigError

    unpriced = {"teacher.model": "openai/my-local-vllm", "max_cost_usd": 1.0}
    with pytest.raises(ConfigError, match="teacher.input_cost_per_1m_usd"):
        check_teacher(load_config(None, unpriced))
    check_teacher(load_config(None, {**unpriced, "teacher.input_cost_per_1m_usd": 0.1}))
    check_teacher(load_config(None, {"teacher.model": "openai/gpt-4o-mini", "max_cost_usd": 1.0}))
