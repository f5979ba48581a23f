"""The active-distillation loop (DESIGN.md §2): prepare data and the student, then rounds.

Stops at `rounds`, when the pool is exhausted, or at a round boundary once the teacher-
token or dollar budget is spent, whichever comes first. Writes runs/<run>/summary.json.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from elad_core.config import RunConfig
from elad_core.data import source_fingerprint
from elad_core.teacher_endpoint import teacher_endpoint
from flows.distill_round import distill_round
from tasks import in_run
from tasks.artifacts import publish_run
from tasks.data import prepare_data, read_examples
from tasks.student import build_student
from tasks.teacher import REQUESTS_SENT


def budget_stop(config: RunConfig, rounds: list[dict], pool_left: int) -> str | None:
    """Why the loop stops before the next round, or None to go on."""
    tokens = sum(r["teacher_tokens"] for r in rounds)
    cost = sum(r["cost_usd"] for r in rounds)
    if config.max_teacher_tokens is not None and tokens >= config.max_teacher_tokens:
        return f"teacher-token budget reached ({tokens} >= {config.max_teacher_tokens})"
    if config.max_cost_usd is not None and cost >= config.max_cost_usd:
        return f"dollar budget reached (${cost:.4f} >= ${config.max_cost_usd})"
    if pool_left == 0:
        return "pool exhausted"
    return None


@flow(name="active-distillation")
def active_distillation(config: RunConfig) -> dict:
    """Run the rounds of one active-distillation job; returns the summary (also on disk)."""
    t0, sent0 = time.perf_counter(), REQUESTS_SENT.value
    logger = get_run_logger()
    run_dir = config.run_dir.resolve()
    dc = config.data
    sources = source_fingerprint(dc.dataset, [dc.pool_split, dc.eval_split])
    data = in_run(prepare_data, run_dir)(dc.model_dump(), sources, config.seed, run_dir)
    student = in_run(build_student, run_dir)(
        config.student.model, config.student.embedded.model_dump(), data["pool"], data["pool_sha"],
        config.seed, run_dir / "student_base")
    pool = read_examples(data["pool"])
    state = {"data": data, "student": student, "weights": {}, "annotated": [], "annotation_files": []}
    rounds, stopped = [], f"finished {config.rounds} rounds"
    with teacher_endpoint(config.teacher, pool, run_dir / "oracle_requests.jsonl") as api_base:
        state["api_base"] = api_base
        for r in range(config.rounds):
            reason = budget_stop(config, rounds, len(pool) - len(state["annotated"]))
            if reason:
                stopped = f"stopped before round {r}: {reason}"
                logger.warning(stopped)
                break
            res = distill_round.with_options(flow_run_name=f"{config.run_name}-round-{r:03d}")(
                config, r, state)
            state.update(weights=res["weights"], annotation_files=res["annotation_files"],
                         annotated=state["annotated"] + res["selected_ids"])
            rounds.append({k: v for k, v in res.items()
                           if k not in ("selected_ids", "weights", "annotation_files", "config")})
    total = 0
    for row in rounds:
        total += row["teacher_tokens"]
        row["cumulative_teacher_tokens"] = total
    summary = {"run_name": config.run_name, "rounds": rounds, "stopped": stopped,
               "teacher_requests_sent": REQUESTS_SENT.value - sent0,
               "wall_s": round(time.perf_counter() - t0, 3)}
    publish_run(config.run_name, run_dir, summary)
    return summary
