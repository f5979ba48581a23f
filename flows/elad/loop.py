"""The active-distillation loop (docs/design.md §2): prepare data and the student, then rounds.

Stops at `rounds`, when the pool is exhausted, or at a round boundary when the next round's
estimated teacher tokens or dollars would exceed a budget (run or round), whichever comes
first (elad_core.budget); says why in summary.json's `stopped`. Inputs are checked before
anything is written (elad_core.elad.preflight). Writes runs/<run>/summary.json. Every round's
sampling / probe shards run on the task runner of `config.runner` (flows/runners.py: one
after another, or on a Dask cluster that lives as long as the run).
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from elad_core.elad.cost import estimator_for, gold_solutions
from elad_core.budget import with_cumulative_tokens
from elad_core.elad.config import RunConfig
from elad_core.elad.loaders import fingerprint
from elad_core.elad.preflight import preflight
from elad_core.elad.round_record import RunSummary
from elad_core.explanations.records import Example
from elad_core.elad.state import DataRefs, RoundState, StudentRef
from elad_core.teacher.endpoint import teacher_endpoint
from elad_core.elad.oracle_judge import OracleJudge
from flows.elad.round_budget import round_budget
from flows.elad.round import distill_round
from flows.runners import task_runner
from tasks import in_run
from tasks.artifacts import publish_run
from tasks.elad.artifacts import CURVE
from tasks.elad.prepare import prepare_data, read_examples
from tasks.elad.student import build_student
from tasks.teacher import RUN_COUNTS, finish_invocation


@flow(name="active-distillation")
def active_distillation(config: RunConfig, checked: bool = False) -> RunSummary:
    """Run the rounds of one active-distillation job; returns the summary (also on disk).

    checked: the caller already ran the pre-flight on this config (`elad run` does, before it
    starts the flow); a deployment's run leaves it False and the flow runs it itself.
    """
    t0, logger = time.perf_counter(), get_run_logger()
    run_dir = config.run_dir.resolve()
    RUN_COUNTS.pop(str(run_dir))  # this run's teacher requests count from 0
    if not checked:
        preflight(config)  # bad data / a missing key: one clear error, nothing written
    data, student, pool = prepare_run(config)
    estimator = estimator_for(config.teacher, [e.question for e in pool],
                              solutions=gold_solutions(pool))
    rounds, stopped = [], f"finished {config.rounds} rounds"
    # the teacher endpoint and the shards' task runner (e.g. a local Dask cluster) live for all rounds
    judge = lambda: OracleJudge(pool, config.teacher.oracle.reply_style)  # noqa: E731 (oracle only)
    with teacher_endpoint(config.teacher, judge, run_dir / "oracle_requests.jsonl") as api_base, \
            task_runner(config.runner) as runner:
        state = RoundState(data=data, student=student, api_base=api_base)
        for r in range(config.rounds):
            reason, budget = round_budget(config, estimator, rounds, r,
                                          len(pool) - len(state.annotated))
            if reason:
                stopped = f"stopped before round {r}: {reason}"
                logger.warning(stopped)
                break
            result = distill_round.with_options(
                flow_run_name=f"{config.run_name}-round-{r:03d}", task_runner=runner)(
                config, r, state.model_copy(update={"budget": budget}))
            state = result.next_state(state)
            rounds.append(result.record)
            why = result.record.teacher_stop or result.record.budget_stop
            if why:
                stopped = f"stopped in round {r}: {why}"
                logger.warning(stopped)
                break
    rows = with_cumulative_tokens([rec.summary_row() for rec in rounds])
    summary = RunSummary(run_name=config.run_name, rounds=rows, stopped=stopped,
                         data={"duplicates": data.duplicates},
                         invocation=finish_invocation(run_dir, t0))  # this run's requests only
    return publish_run(run_dir, summary, "accuracy-curve", CURVE, "accuracy",
                       "Student accuracy against cumulative teacher tokens, one row per round.")


def prepare_run(config: RunConfig) -> tuple[DataRefs, StudentRef, list[Example]]:
    """The run's pool and eval splits as parquet and its student base (cached tasks, under
    the run folder), and the pool's examples. Call it inside a flow."""
    run_dir, dc = config.run_dir.resolve(), config.data
    sources = {"pool": fingerprint(dc.format, dc.dataset, [dc.pool_split]),
               "eval": fingerprint(dc.eval_format or dc.format, dc.eval_dataset or dc.dataset,
                                   [dc.eval_split])}
    data = in_run(prepare_data, run_dir)(dc, dc.answer_family, sources, config.seed, run_dir)
    student = in_run(build_student, run_dir)(
        config.student.model, config.student.embedded, data, config.seed,
        run_dir / "student_base", config.student.chat_template)
    return data, student, read_examples(data.pool)
