"""Scale-out of student sampling (issue #8): one round's sampling shards on 1 vs 2 Dask workers.

The real sampling task (`tasks.elad.student.sample_shard`, a cached Prefect task) is submitted
shard by shard from a Prefect flow to the task runner of `flows.runners`:

* `dask x1`, `dask x2`: a local Dask cluster (127.0.0.1) of 1 or 2 worker processes, each
  with one task thread and one torch thread (`runner.torch_threads`);
* `sequential`: the default runner, every shard in this process with torch's default
  threads (2 on a 2-core machine): the single-process reference.

Student: the embedded tiny Llama of the default config (untrained: sampling cost does not
depend on what it learnt; it writes until `max_new_tokens` or eos), K = 4 explanations per
question at τ = 0.7, GSM8K pool questions. Each configuration samples the same shards into a
fresh folder (no cache hits) and the outputs are checked identical between the two Dask
configurations. Timed: first submit to last result (cluster start and the workers' first
imports are reported apart), with the CPU seconds each worker process used meanwhile (a
worker that had its core to itself used about as many CPU seconds as the wall time). The
machine is shared: the load average is recorded.

    .venv/bin/python benchmarks/scale_out.py [--questions 128] [--shard-questions 16] [--out PATH]

Prints a table and writes JSON (default benchmarks/results/scale_out.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _k, _v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
               "DASK_LOGGING__DISTRIBUTED": "warning"}.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow  # noqa: E402

from elad_core.elad.config import DataConfig, RunnerConfig, StudentConfig  # noqa: E402
from elad_core.elad.state import DataRefs, SamplingSettings, StudentRef  # noqa: E402
from elad_core.files import read_parquet  # noqa: E402
from flows.runners import task_runner  # noqa: E402
from tasks import in_run  # noqa: E402
from tasks.elad.prepare import prepare_data  # noqa: E402
from tasks.elad.student import build_student, sample_shard  # noqa: E402

RUNNERS = {"dask x1": RunnerConfig(kind="dask", n_workers=1, torch_threads=1),
           "dask x2": RunnerConfig(kind="dask", n_workers=2, torch_threads=1),
           "sequential": RunnerConfig()}


@flow(name="bench-sampling")
def sample_all(student: StudentRef, data: DataRefs, shards: list[list[str]],
               sampling: SamplingSettings, run_dir: Path) -> dict:
    """Submit every shard to the flow's task runner; wall seconds from first submit to last result."""
    t0 = time.perf_counter()
    futures = [in_run(sample_shard, run_dir).submit(
        student, None, data, ids, sampling, "number", 1_009 + j,
        run_dir / "shards" / f"samples_{j:04d}.parquet") for j, ids in enumerate(shards)]
    results = [f.result() for f in futures]
    return {"wall_s": time.perf_counter() - t0, "shards": results}


def _import_sampling_stack() -> None:
    """Run in every worker before timing: the first imports (torch, transformers) take seconds."""
    import elad_core.student  # noqa: F401
    import tasks.elad.student  # noqa: F401


def _cpu_outside_workers(workers: dict) -> float:
    """CPU seconds of this process and its descendants other than the Dask worker processes
    (for the sequential runner: everything, sampling included)."""
    import psutil

    me = psutil.Process()
    worker_pids = set()
    if "local" not in workers:
        for child in me.children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()) or "forkserver" in " ".join(child.cmdline()):
                    worker_pids.add(child.pid)
            except psutil.Error:
                pass
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        if proc.pid in worker_pids:
            continue
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_one(name: str, cfg: RunnerConfig, student: StudentRef, data: DataRefs, shards: list,
            sampling: SamplingSettings, root: Path) -> dict:
    run_dir = root / name.replace(" ", "_")
    t0 = time.perf_counter()
    with task_runner(cfg) as runner:
        if cfg.kind == "dask":
            from distributed import Client

            with Client(runner.address, set_as_default=False) as client:
                client.run(_import_sampling_stack)
                cpu0 = client.run(time.process_time)
        else:
            cpu0 = {"local": time.process_time()}
        start_s = time.perf_counter() - t0
        own0 = _cpu_outside_workers(cpu0)
        out = sample_all.with_options(task_runner=runner)(student, data, shards, sampling, run_dir)
        own_cpu_s = _cpu_outside_workers(cpu0) - own0
        if cfg.kind == "dask":
            with Client(runner.address, set_as_default=False) as client:
                cpu1 = client.run(time.process_time)
        else:
            cpu1 = {"local": time.process_time()}
    # CPU seconds each worker process used while sampling: ≈ wall × threads when it had its cores
    cpu_s = [round(cpu1[w] - cpu0[w], 1) for w in sorted(cpu0)]
    tokens = sum(s.new_tokens for s in out["shards"])
    rows = [row for s in out["shards"] for row in read_parquet(Path(s.path))]
    return {"runner": name, "workers": cfg.n_workers if cfg.kind == "dask" else 1,
            "torch_threads_per_worker": cfg.torch_threads if cfg.kind == "dask" else None,
            "cluster_start_s": round(start_s, 2), "sampling_wall_s": round(out["wall_s"], 2),
            "shard_compute_s": round(sum(s.wall_s for s in out["shards"]), 2),
            "cpu_s_per_worker": cpu_s,
            # this process (flow, Dask scheduler, Prefect client) + its other children (the
            # ephemeral Prefect API server): the orchestration's CPU, competing with the workers
            "cpu_s_orchestration": round(own_cpu_s, 1),
            "new_tokens": tokens, "new_tokens_per_s": round(tokens / out["wall_s"]),
            "sequences": len(rows), "_rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--shard-questions", type=int, default=16)
    parser.add_argument("--runners", default=",".join(RUNNERS), help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the runners in turn this many times (a shared machine's load drifts)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "scale_out.json")
    args = parser.parse_args()
    sc = StudentConfig()
    sampling = SamplingSettings.of(sc)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="scale_out_") as tmp:
        root = Path(tmp)
        data = prepare_data.fn(DataConfig(pool_size=args.questions), "number", {}, 0, root)
        student = build_student.fn("embedded", sc.embedded, data, 0, root / "student_base")
        ids = [r["id"] for r in read_parquet(Path(data.pool))]
        shards = [ids[i:i + args.shard_questions] for i in range(0, len(ids), args.shard_questions)]
        results = []
        for rep in range(args.repeats):
            for name in args.runners.split(","):
                row = run_one(name, RUNNERS[name], student, data, shards, sampling, root / str(rep))
                row.update(repeat=rep, loadavg_1min_after=round(os.getloadavg()[0], 2))
                results.append(row)
                print(f"{name}: {row['sampling_wall_s']} s, load {row['loadavg_1min_after']}",
                      file=sys.stderr)
    summary = compare(results)
    for r in results:
        r.pop("_rows")
    report = {"questions": args.questions, "shards": len(shards), "sampling": sampling,
              "student": sc.embedded.model_dump(), "cpu_count": os.cpu_count(),
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "results": results, **summary}
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


def compare(results: list[dict]) -> dict:
    """Median sampling wall time per runner; 2-vs-1-worker speedup; identical outputs."""
    import statistics

    walls: dict[str, list[float]] = {}
    for r in results:
        walls.setdefault(r["runner"], []).append(r["sampling_wall_s"])
    out = {"median_sampling_wall_s": {k: statistics.median(v) for k, v in walls.items()}}
    med = out["median_sampling_wall_s"]
    if "dask x1" in med and "dask x2" in med:
        out["speedup_2_vs_1_workers"] = round(med["dask x1"] / med["dask x2"], 2)
    rows = [r["_rows"] for r in results if r["runner"].startswith("dask")]
    out["outputs_identical_across_dask_runs"] = all(x == rows[0] for x in rows)
    seq = [r["_rows"] for r in results if r["runner"] == "sequential"]
    if seq and rows:  # torch's default threads here vs one per worker: log-prob bits may differ
        out["outputs_identical_sequential_vs_dask"] = seq[0] == rows[0]
        out["tokens_identical_sequential_vs_dask"] = (
            [(x["question_id"], x["text"]) for x in seq[0]] == [(x["question_id"], x["text"]) for x in rows[0]])
    return out


def print_table(report: dict) -> None:
    cols = ["repeat", "runner", "workers", "torch_threads_per_worker", "sampling_wall_s",
            "new_tokens_per_s", "shard_compute_s", "cpu_s_per_worker", "cpu_s_orchestration",
            "cluster_start_s", "loadavg_1min_after"]
    print(f"{report['questions']} questions x K={report['sampling']['k_samples']}, "
          f"{report['shards']} shards; load average before {report['loadavg_before']}, "
          f"after {report['loadavg_after']}")
    print(" | ".join(cols))
    for r in report["results"]:
        print(" | ".join(str(r[c]) for c in cols))
    print(f"median sampling wall s: {report['median_sampling_wall_s']}")
    if "speedup_2_vs_1_workers" in report:
        print(f"2 workers vs 1 (medians): {report['speedup_2_vs_1_workers']}x; Dask outputs "
              f"identical across runs: {report['outputs_identical_across_dask_runs']}")


if __name__ == "__main__":
    main()
