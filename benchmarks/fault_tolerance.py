"""Fault tolerance of teacher annotation (issue #4): is everything annotated, is anything lost
or paid twice, and what do faults cost in wall time?

N selected GSM8K questions are annotated with CLEAR (the multi-turn dialogue: the case where a
retry could pay earlier turns again) through the real path: the Prefect teacher batch task
(`tasks.elad.annotate.annotate_batch_task`, retried by Prefect on transient errors) -> TeacherClient
-> litellm -> HTTP -> the oracle teacher server, whose request log counts every request and
every completion it delivered. Three scenarios, each in a fresh folder:

* clean: no faults (the reference: annotations and wall time);
* transient: 30% of requests fail transiently — 500, 429 + Retry-After, timeouts, dropped
  connections (equal shares);
* transient+permanent: the same, plus 5% of requests answered HTTP 400 (permanent).

The student explanations CLEAR revises are made from the gold solutions: a third unchanged
(every step accepted), the rest with one step's result made wrong (the teacher says No there).
Times are scaled down (Retry-After 0.2 s, client timeout 2 s, backoff from 0.05 s) so a run
takes minutes; the oracle is a test double, so figures measure the pipeline, not a provider.

    .venv/bin/python benchmarks/fault_tolerance.py [--questions 500] [--out PATH]

Prints a table and writes JSON (default benchmarks/results/fault_tolerance.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

for _k, _v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_LOGGING_LEVEL": "WARNING"}.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elad_core.elad.gsm8k import load_examples  # noqa: E402
from elad_core.explanations.steps import split_steps  # noqa: E402
from elad_core.elad.prompts import PROMPT_VERSION  # noqa: E402
from elad_core.files import read_parquet  # noqa: E402
from elad_core.teacher.config import TeacherConfig  # noqa: E402
from elad_core.elad.oracle_judge import OracleJudge  # noqa: E402
from elad_core.teacher.oracle.server import (  # noqa: E402
    FaultConfig,
    OracleServer,
    read_request_log,
    request_log_stats,
)

TRANSIENT = {"error_rate": 0.075, "rate_limit_rate": 0.075, "timeout_rate": 0.075,
             "drop_rate": 0.075}
SCENARIOS = {"clean": {}, "transient": TRANSIENT,
             "transient+permanent": {**TRANSIENT, "bad_request_rate": 0.05}}
TEACHER = {"batch_size": 50, "max_concurrency": 16, "timeout_s": 2.0, "retries": 40,
           "retry_delay_s": 0.05, "annotator": "clear"}
FAULT_TIMES = {"retry_after_s": 0.2, "hang_s": 5.0, "seed": 7}


def explanations(examples, seed: int = 0) -> list[str]:
    """Student-like explanations: gold steps without `<<...>>`; 2 in 3 with one wrong result."""
    rng, out = random.Random(seed), []
    for e in examples:
        steps = [re.sub(r"<<[^>]*>>", "", s) for s in split_steps(e.rationale)]
        if steps and rng.random() < 2 / 3:
            k = rng.randrange(len(steps))
            steps[k] = re.sub(r"(\d+)(?!.*\d)", lambda m: str(int(m.group(1)) + 7), steps[k])
        out.append("\n".join(steps + [f"#### {e.answer}"]))
    return out


def run_scenario(name: str, faults: dict, examples, expl, root: Path) -> dict:
    """Annotate every example through the Prefect teacher task; returns counts and wall time."""
    from prefect import flow
    from prefect.tasks import exponential_backoff

    from elad_core.elad.annotators import AnnotationRequest
    from tasks.elad.annotate import ELAD_REPLY_FIELDS, annotate_batch_task

    folder = root / name.replace("+", "_")
    cfg = TeacherConfig(**TEACHER)
    key = cfg.reply_key(PROMPT_VERSION, *ELAD_REPLY_FIELDS)
    requests = [AnnotationRequest(e.id, e.question, x, 0)
                for e, x in zip(examples, expl, strict=True)]
    task = annotate_batch_task.with_options(
        retries=cfg.retries, retry_delay_seconds=exponential_backoff(cfg.retry_delay_s),
        result_storage=folder / ".prefect")

    @flow(name=f"fault-tolerance-{name.replace('+', '-')}")
    def annotate_all(api_base: str) -> list[dict]:
        bs = cfg.batch_size
        return [task(cfg.annotator, requests[i:i + bs], key, cfg, api_base, "number",
                     folder / f"annotations_{i // bs:04d}.parquet")
                for i in range(0, len(requests), bs)]

    log = folder / "requests.jsonl"
    folder.mkdir(parents=True)
    fault_cfg = FaultConfig(**faults, **FAULT_TIMES)
    with OracleServer(OracleJudge(examples), fault_cfg, log) as server:
        t0 = time.perf_counter()
        state = annotate_all(server.api_base, return_state=True)
        wall = time.perf_counter() - t0
    refs = state.result()
    rows = [r for ref in refs for r in read_parquet(Path(ref.path))]
    stats = request_log_stats(read_request_log(log))
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    permanent_qids = {r["question_id"] for r in read_request_log(log) if r["status"] == 400}
    failed_qids = {r["question_id"] for r in rows if r["status"] == "failed"}
    return {
        "scenario": name, "questions": len(requests), "annotations": len(rows),
        "lost": len({r["question_id"] for r in requests} - {r["question_id"] for r in rows}),
        "statuses": statuses, "annotated_pct": 100.0 * statuses.get("ok", 0) / len(requests),
        "failed_match_permanent_400s": failed_qids == permanent_qids,
        "requests": stats["requests"], "completions": stats["completions"],
        "paid_twice": stats["paid_twice"], "faults": stats["faults"],
        "teacher_tokens_served": stats["teacher_tokens"],
        "teacher_tokens_recorded": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows),
        "task_attempts": _attempts(state.state_details.flow_run_id),
        "wall_s": round(wall, 2), "targets": {r["question_id"]: r["target"] for r in rows},
    }


def _attempts(flow_run_id) -> int:
    """Runs of the flow's teacher batch tasks, first tries and retries together."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return sum(r.run_count for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "fault_tolerance.json")
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    examples = [e for e in load_examples("gsm8k", "train") if split_steps(e.rationale)]
    examples = random.Random(0).sample(examples, args.questions)
    expl = explanations(examples)
    results = []
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        for name, faults in SCENARIOS.items():
            results.append(run_scenario(name, faults, examples, expl, Path(tmp)))
            print(f"{name}: done in {results[-1]['wall_s']} s", file=sys.stderr)
    clean = results[0]
    for r in results:
        r["wall_overhead_pct"] = round(100 * (r["wall_s"] / clean["wall_s"] - 1), 1)
        ok = [q for q, t in r["targets"].items() if t]
        r["ok_equal_to_clean"] = all(r["targets"][q] == clean["targets"][q] for q in ok)
    for r in results:
        del r["targets"]
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"teacher": TEACHER, "fault_times": FAULT_TIMES,
                                    "scenarios": SCENARIOS, "results": results}, indent=2))
    print(f"wrote {args.out}")


def print_table(results: list[dict]) -> None:
    cols = ("scenario", "questions", "annotated_pct", "lost", "paid_twice", "requests",
            "completions", "task_attempts", "wall_s", "wall_overhead_pct")
    print(" | ".join(cols) + " | statuses | ok == clean | failed == 400s")
    for r in results:
        cells = [f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        print(" | ".join(cells) + f" | {r['statuses']} | {r['ok_equal_to_clean']} | "
              f"{r['failed_match_permanent_400s']}")


if __name__ == "__main__":
    main()
