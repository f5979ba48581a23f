"""EvoKD distillation (docs/design.md §2.5, issue #6) as a Prefect flow of cached tasks.

Prepares the data, then runs rounds (flows/evokd/round.py) until `rounds`, a failed teacher
call, or a budget: a round's teacher spend is estimated before it starts (the mean of earlier
teacher rounds, a priori for the first) and the run stops at that round boundary when a
budget would be passed (elad_core.evokd.round_record.stop_reason). [6] The student is evaluated
on the fixed test subset every round (or only the last, `eval.every_round`).
Writes runs/<run>/round_NNN/ (batch / feedback parquet, teacher_*.json, adapter or model,
eval.json, manifest.json), Prefect artifacts and summary.json.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from elad_core.budget import Budget
from elad_core.evokd import prompts
from elad_core.evokd.config import EvoKDConfig
from elad_core.evokd.preflight import evokd_preflight
from elad_core.evokd.round_record import EvoKDSummary, stop_reason, summary_rows
from elad_core.files import read_parquet
from elad_core.teacher.endpoint import teacher_endpoint
from elad_core.evokd.oracle_judge import EvoKDOracleJudge
from elad_core.timing import StepTimer
from flows.evokd.round import EvoKDRun, examples
from tasks import in_run
from tasks.artifacts import publish_run
from tasks.evokd.artifacts import CURVE, publish_evokd_round
from tasks.evokd.prepare import prepare_evokd_data
from tasks.teacher import RUN_COUNTS, finish_invocation


@flow(name="evokd-distillation")
def evokd_distillation(config: EvoKDConfig) -> EvoKDSummary:
    """Run one EvoKD job (or a baseline, `evokd.method`); returns the summary (also on disk)."""
    t0, logger = time.perf_counter(), get_run_logger()
    run_dir = config.run_dir.resolve()
    RUN_COUNTS.pop(str(run_dir))  # this run's teacher requests count from 0
    sources = evokd_preflight(config)  # bad data / options / key: one line, nothing written
    data = in_run(prepare_evokd_data, run_dir)(config.data.model_dump(mode="json"), sources,
                                               config.seed, run_dir)
    given = [x["text"] for p in sorted(run_dir.glob("round_*/batch.parquet"))
             for x in read_parquet(p)]

    def judge() -> EvoKDOracleJudge:  # the simulated teacher, only for teacher "oracle"
        return EvoKDOracleJudge(examples(data.reserve), data.kind,
                                known=examples(data.seeds), given=given, seed=config.seed)

    budget, stopped = Budget.from_config(config), ""
    with teacher_endpoint(config.teacher, judge, run_dir / "oracle_requests.jsonl") as api:
        run = EvoKDRun(config, data, api)
        for r in range(config.rounds):
            rdir, timer, t_round = run_dir / f"round_{r:03d}", StepTimer(), time.perf_counter()
            rec = run.seed_round(rdir, timer) if r == 0 else run.teacher_round(r, rdir, timer)
            run.records.append(rec)
            stopped = stop_reason(run.records, r + 1, config.rounds, config.evokd.method,
                                  budget, run.estimate) or ""
            if config.eval.every_round or stopped:  # [6] (the last round always)
                with timer("evaluate"):
                    rec.eval = run.evaluate(rdir)
                rec.f1, rec.accuracy = rec.eval["f1"], rec.eval.get("accuracy")
            rec.step_wall_s, rec.wall_s = timer.wall_s, time.perf_counter() - t_round
            rec.config = config.model_dump(mode="json")
            outputs = {"batch": rec.batch_ref["sha"],
                       "weights": run.weights.sha if run.weights else None,
                       "eval": rec.eval, "analysis": rec.analysis}
            in_run(publish_evokd_round, run_dir)(config.run_name, rdir, outputs, rec.manifest())
            logger.info("round %d (%s): %d new examples, %d teacher tokens, f1 %s", r,
                        rec.method, rec.new_examples, rec.teacher_tokens, rec.f1)
            if stopped:
                break
    if "budget" in stopped or "failed" in stopped:
        logger.warning(stopped)
    rows, last = summary_rows(run.records), run.records[-1]
    summary = EvoKDSummary(
        run_name=config.run_name, method=config.evokd.method, task=config.data.task,
        k_shot=config.data.k_shot, seed=config.seed, rounds=rows, stopped=stopped,
        final={**{k: v for k, v in (last.eval or {}).items() if k != "wall_s"},
               "round": last.round},
        teacher_tokens=rows[-1]["cumulative_teacher_tokens"],
        cost_usd=round(sum(x.cost_usd for x in run.records), 6),
        train_examples_total=sum(x.new_examples for x in run.records),
        prompt_version=prompts.PROMPT_VERSION,
        invocation=finish_invocation(run_dir, t0))  # this run's requests only
    return publish_run(run_dir, summary, "f1-curve", CURVE, "f1",
                       "EvoKD student: test F1 against cumulative teacher tokens, one row per round.")
