"""Throughput and scale of a round (issue #7): one table, each figure beside its target.

    .venv/bin/python benchmarks/throughput.py [--quick] [--parts ...] [--out PATH]

1. sampling: student explanations/s, batched (`elad_core.student.sample_explanations`, all K
   samples of a batch of questions in one generate call) vs a per-question loop (the same
   function called once per question: one generate call per question's K samples);
2. probes: EGSS probe time / sampling time for the same questions;
3. teacher: requests/s of CoT annotation through the Prefect teacher task
   (`tasks.elad.annotate.annotate_batch_task`, litellm, HTTP) against the oracle teacher with 200 ms
   injected latency, at concurrency 32 and 128 (limit = concurrency / latency); the oracle runs
   in its own process, like a remote API, and its CPU per request is measured;
4. orchestration: the default job (`active_distillation`, default config) run once, then again
   (every task cached): Prefect's share of each round = round wall - the Running time of the
   round's task runs (read from the Prefect API), the same for the whole job (data preparation,
   student build and round subflows included), and the re-run's time / the first time;
5. scale: pools of 512 / 2048 / 8192 arithmetic questions (`elad_core.synthetic.arithmetic`):
   sampling and probes timed on two subsets and extrapolated per question; merging the shard
   files and scoring + selection (`merge_shards`, `score_and_select`) timed at full size on
   samples replicated from the measured ones; annotate / train / evaluate (independent of the
   pool) and Prefect's per-task overhead taken from the default run; peak RSS of the default
   run's process tree (this process, the Prefect API server, workers).

The student is the default tiny one after round 0 of the default run (the model round 1
samples with). The oracle is a TEST DOUBLE for a real LLM: its figures measure the pipeline.
CPU is shared: `uptime` load is recorded with every part. OMP_WAIT_POLICY defaults to PASSIVE
here: with torch's default (spinning) OpenMP threads, sampling with 2 torch threads ran at 1.8
explanations/s instead of 13.3 while other processes wanted the CPU (load ~6), which made every
student figure depend on the neighbours' load. Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

for _k, _v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
               "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARTS = ("sampling", "teacher", "orchestration", "scale")  # probes come with sampling
LATENCY_S = 0.2
# the default job, shrunk for --quick (figures then are indicative only)
QUICK_RUN = {"rounds": 2, "data": {"pool_size": 96, "eval_size": 16},
             "selection": {"seed_size": 32, "per_round": 16}, "train": {"steps": 20},
             "student": {"max_new_tokens": 96}}


def uptime() -> str:
    """The 1, 5 and 15 minute load averages (CPU is shared with other work)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeRSS:
    """Peak resident memory of this process and of its process tree (sum over descendants),
    polled from /proc every 0.2 s while the context is open."""

    def __init__(self) -> None:
        self.peak_tree = self.peak_self = 0
        self._stop = threading.Event()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            pids = self._tree()
            self.peak_tree = max(self.peak_tree, sum(self._rss(p) for p in pids))
            self.peak_self = max(self.peak_self, self._rss(os.getpid()))

    def __enter__(self) -> TreeRSS:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- 4. orchestration (default run)

def default_run(root: Path, quick: bool) -> dict:
    """Run the default job twice (the second fully cached); per-round walls and Prefect's share."""
    from elad_core.elad.config import RunConfig
    from flows.elad.loop import active_distillation

    cfg = RunConfig.model_validate({"run_name": "throughput", "runs_dir": str(root / "runs"),
                                    **(QUICK_RUN if quick else {})})
    load0 = uptime()
    with TreeRSS() as rss:
        t0 = time.perf_counter()
        first = active_distillation(cfg)
        first_wall = time.perf_counter() - t0
    job_task_s = _job_task_run_s(first_wall + 1.0)
    t0 = time.perf_counter()
    again = active_distillation(cfg)
    rerun_wall = time.perf_counter() - t0
    rounds = []
    for r1, r2 in zip(first.rounds, again.rounds, strict=True):
        runs = _task_runs(f"{cfg.run_name}-round-{r1['round']:03d}")
        task_s = sum(t.total_run_time.total_seconds() for t in runs[0])
        rounds.append({"round": r1["round"], "wall_s": r1["wall_s"], "task_run_s": task_s,
                       "tasks": len(runs[0]), "prefect_s": r1["wall_s"] - task_s,
                       "prefect_pct": 100 * (r1["wall_s"] - task_s) / r1["wall_s"],
                       "rerun_wall_s": r2["wall_s"], "rerun_pct": 100 * r2["wall_s"] / r1["wall_s"],
                       "step_wall_s": r1["step_wall_s"]})
    return {"config": cfg.model_dump(mode="json"), "first_wall_s": first_wall,
            "job_task_run_s": job_task_s, "job_prefect_pct": 100 * (1 - job_task_s / first_wall),
            "rerun_wall_s": rerun_wall, "rerun_pct": 100 * rerun_wall / first_wall,
            "rerun_teacher_requests": again.invocation.teacher_requests_sent, "rounds": rounds,
            "peak_rss_tree_bytes": rss.peak_tree, "peak_rss_self_bytes": rss.peak_self,
            "ru_maxrss_self_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "run_dir": str(cfg.run_dir.resolve()), "uptime": [load0, uptime()]}


def _job_task_run_s(within_s: float) -> float:
    """Running seconds of every task run of the job's flow runs (the parent and its rounds)
    that started within the last `within_s` seconds; the task runs that stand for a round
    subflow in the parent are left out (their time is the round's own task runs)."""
    from datetime import datetime, timedelta, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    since = datetime.now(timezone.utc) - timedelta(seconds=within_s)
    flows = FlowFilter(name=FlowFilterName(any_=["active-distillation", "distill-round"]))
    runs: list = []
    with get_client(sync_client=True) as client:
        while page := client.read_task_runs(flow_filter=flows, limit=200, offset=len(runs)):
            runs += page
        subflows = {fr.parent_task_run_id for fr in client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["distill-round"])), limit=200)}
    return sum(t.total_run_time.total_seconds() for t in runs if t.id not in subflows
               and t.start_time is not None and t.start_time >= since)


def _task_runs(flow_run_name: str) -> list[list]:
    """Task runs of each flow run named `flow_run_name`, oldest run first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterName,
    )

    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[flow_run_name])))
        flow_runs.sort(key=lambda fr: fr.start_time or fr.created)
        return [client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[fr.id]))) for fr in flow_runs]


# ---------------------------------------------------------------- 1-2. sampling and probes

def student_after_round0(run: dict):
    """(model, tokenizer, sampling config, pool questions not annotated in round 0)."""
    from elad_core.elad.config import StudentConfig
    from elad_core.files import read_parquet
    from elad_core.student import load_student

    run_dir = Path(run["run_dir"])
    model, tok = load_student(str(run_dir / "student_base"), run_dir / "round_000" / "model")
    seeded = {r["question_id"] for r in read_parquet(run_dir / "round_000" / "selected.parquet")}
    pool = [r for r in read_parquet(run_dir / "data" / "pool.parquet") if r["id"] not in seeded]
    return model, tok, StudentConfig(**run["config"]["student"]), pool


def time_sampling(model, tok, sc, ids: list[str], questions: list[str], seed: int = 0):
    """Batched production sampling of `questions` -> (samples, wall seconds)."""
    from elad_core.student import sample_explanations

    t0 = time.perf_counter()
    samples = sample_explanations(model, tok, ids, questions, k=sc.k_samples,
                                  temperature=sc.temperature, max_new_tokens=sc.max_new_tokens,
                                  batch_size=sc.generate_batch_size, seed=seed)
    return samples, time.perf_counter() - t0


def time_probes(model, tok, sc, samples, questions: dict[str, str]) -> tuple[int, float]:
    """EGSS probes of `samples` as the probe task runs them -> (probes, wall seconds)."""
    from elad_core.elad import rounds
    from elad_core.student import probe_answers

    plan = rounds.probe_plan(samples, questions, sc.max_probe_steps)
    t0 = time.perf_counter()
    probe_answers(model, tok, [p.prompt for p in plan], sc.probe_max_new_tokens,
                  sc.probe_batch_size)
    return len(plan), time.perf_counter() - t0


def sampling(run: dict, quick: bool) -> dict:
    """Batched vs per-question-loop sampling, and probe time / sampling time."""
    model, tok, sc, pool = student_after_round0(run)
    n_batch, n_loop = (32, 8) if quick else (128, 24)
    rows = pool[:n_batch]
    ids, qs = [r["id"] for r in rows], [r["question"] for r in rows]
    load0 = uptime()
    samples, batched_s = time_sampling(model, tok, sc, ids, qs)
    loop_s, loop_samples = 0.0, []
    for i in range(n_loop):  # one generate call per question (its K samples)
        s, dt = time_sampling(model, tok, sc, ids[i:i + 1], qs[i:i + 1])
        loop_s, loop_samples = loop_s + dt, loop_samples + s
    n_probes, probe_s = time_probes(model, tok, sc, samples, dict(zip(ids, qs, strict=True)))
    k = sc.k_samples
    batched_rate, loop_rate = n_batch * k / batched_s, n_loop * k / loop_s
    return {"questions_batched": n_batch, "questions_loop": n_loop, "k": k,
            "batched_s": batched_s, "loop_s": loop_s,
            "batched_expl_per_s": batched_rate, "loop_expl_per_s": loop_rate,
            "speedup": batched_rate / loop_rate,
            "batched_tokens_per_s": sum(s.n_new_tokens for s in samples) / batched_s,
            "loop_tokens_per_s": sum(s.n_new_tokens for s in loop_samples) / loop_s,
            "mean_new_tokens": sum(s.n_new_tokens for s in samples) / len(samples),
            "probes": n_probes, "probe_s": probe_s, "probe_over_sampling": probe_s / batched_s,
            "uptime": [load0, uptime()]}


# ---------------------------------------------------------------- 3. teacher fan-out

def _serve(port_q, latency_s: float, log: str) -> None:
    """Child process: the oracle teacher on a free loopback port until SIGTERM."""
    from elad_core.elad.gsm8k import load_examples
    from elad_core.elad.oracle_judge import OracleJudge
    from elad_core.teacher.oracle.server import FaultConfig, OracleServer

    server = OracleServer(OracleJudge(load_examples("gsm8k", "train")),
                          FaultConfig(latency_s=latency_s), request_log=Path(log)).start()
    port_q.put(server.port)
    signal.sigwait([signal.SIGTERM])
    server.stop()


def teacher(root: Path, quick: bool) -> list[dict]:
    """CoT requests/s through the Prefect teacher task at each (concurrency, processes)."""
    import multiprocessing

    from prefect import flow

    from elad_core.elad.gsm8k import load_examples
    from elad_core.elad.prompts import PROMPT_VERSION
    from elad_core.files import read_parquet
    from elad_core.elad import fanout
    from elad_core.teacher.config import TeacherConfig
    from elad_core.teacher.oracle.server import read_request_log, request_log_stats
    from elad_core.elad.annotators import AnnotationRequest
    from tasks.elad.annotate import ELAD_REPLY_FIELDS, annotate_batch_task

    examples = load_examples("gsm8k", "train")
    results = []
    for conc, processes in ((32, 1), (32, 2), (128, 1), (128, 2), (128, 3)):
        n = conc * (12 if quick else 40)
        folder = root / f"teacher_c{conc}_p{processes}"
        ctx = multiprocessing.get_context("spawn")
        port_q = ctx.Queue()
        server = ctx.Process(target=_serve, args=(port_q, LATENCY_S, str(folder / "requests.jsonl")),
                             daemon=True)
        folder.mkdir(parents=True)
        server.start()
        api_base = f"http://127.0.0.1:{port_q.get(timeout=180)}/v1"
        cfg = TeacherConfig(annotator="cot", max_concurrency=conc, batch_size=n,
                            processes=processes)
        key = cfg.reply_key(PROMPT_VERSION, *ELAD_REPLY_FIELDS)
        task = annotate_batch_task.with_options(result_storage=folder / ".prefect", retries=0)

        @flow(name=f"throughput-teacher-c{conc}-p{processes}")
        def annotate(start: int, stop: int, out: str):  # -> AnnotationBatchRef
            reqs = [AnnotationRequest(e.id, e.question) for e in examples[start:stop]]
            return task("cot", reqs, key, cfg, api_base, "number", Path(out))

        # warm-up (worker pool, litellm's client cache), not timed: the pool lives for the run
        t0 = time.perf_counter()
        annotate(7000, 7000 + 2 * conc, str(folder / "warmup.parquet"))
        warmup_s = time.perf_counter() - t0
        pids = [os.getpid()] + list((fanout._POOL._processes or {})
                                    if fanout._POOL and processes > 1 else [])
        load0, c0, s0 = uptime(), sum(cpu_s(p) for p in pids), cpu_s(server.pid)
        t0 = time.perf_counter()
        ref = annotate(0, n, str(folder / "annotations.parquet"))
        wall = time.perf_counter() - t0
        client_cpu, server_cpu = sum(cpu_s(p) for p in pids) - c0, cpu_s(server.pid) - s0
        server.terminate()
        server.join(10)
        rows = read_parquet(Path(ref.path))
        stats = request_log_stats(read_request_log(folder / "requests.jsonl"))
        results.append({
            "concurrency": conc, "processes": processes, "requests": n, "wall_s": wall,
            "requests_per_s": n / wall, "limit_per_s": conc / LATENCY_S,
            "pct_of_limit": 100 * n * LATENCY_S / (wall * conc), "warmup_s": warmup_s,
            "client_cpu_ms_per_request": 1000 * client_cpu / n,
            "server_cpu_ms_per_request": 1000 * server_cpu / n,
            "server_cpu_share_pct": 100 * server_cpu / max(client_cpu + server_cpu, 1e-9),
            # requests/s if client and oracle had both cores to themselves at the CPU/request
            # measured (an upper bound), and if only the client ran here (a remote teacher)
            "cpu_ceiling_per_s": 2 * n / max(client_cpu + server_cpu, 1e-9),
            "cpu_ceiling_remote_per_s": 2 * n / max(client_cpu, 1e-9),
            "ok": sum(r["status"] == "ok" for r in rows), "paid_twice": stats["paid_twice"],
            "tokens_recorded": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows),
            "tokens_served": stats["teacher_tokens"], "uptime": [load0, uptime()]})
        print(f"teacher c{conc} p{processes}: {n / wall:.1f} req/s (load {uptime()})",
              file=sys.stderr)
    return results


# ---------------------------------------------------------------- 5. scale

def scale(run: dict, root: Path, quick: bool) -> dict:
    """Per-round time and memory at pools of 512 / 2048 / 8192 (see module docstring)."""
    from elad_core.synthetic.arithmetic import generate

    model, tok, sc, _ = student_after_round0(run)
    problems = generate(8192, seed=7)
    qs = [p["question"] for p in problems]
    ids = [f"a{i:05d}" for i in range(len(qs))]
    load0 = uptime()
    measured = []
    for n in ((32, 128) if quick else (128, 512)):  # sampling and probes, per question
        samples, s_s = time_sampling(model, tok, sc, ids[:n], qs[:n], seed=n)
        n_probes, p_s = time_probes(model, tok, sc, samples, dict(zip(ids[:n], qs[:n], strict=True)))
        measured.append({"questions": n, "sample_s": s_s, "probe_s": p_s, "probes": n_probes,
                         "sample_s_per_q": s_s / n, "probe_s_per_q": p_s / n})
    linearity = measured[1]["sample_s_per_q"] / measured[0]["sample_s_per_q"]
    r1 = next(r for r in run["rounds"] if r["round"] == 1)
    fixed_s = sum(r1["step_wall_s"].get(k, 0.0) for k in ("annotate", "train", "evaluate"))
    per_task_s = r1["prefect_s"] / r1["tasks"]
    data = run["config"]["data"]
    r1_shards = math.ceil((data["pool_size"] - run["config"]["selection"]["seed_size"])
                          / sc.shard_questions)
    sizes = {}
    for n in (512, 2048, 8192):
        z = _select_and_merge(samples, n, root / f"scale_{n}", sc.shard_questions)
        # one sample + one probe task per shard; the other task runs as in round 1
        z["tasks"] = r1["tasks"] + 2 * (math.ceil(n / sc.shard_questions) - r1_shards)
        z.update(sample_s=measured[1]["sample_s_per_q"] * n,
                 probe_s=measured[1]["probe_s_per_q"] * n, annotate_train_eval_s=fixed_s,
                 prefect_s=per_task_s * z["tasks"])
        z["round_s"] = sum(z[k] for k in ("sample_s", "probe_s", "merge_s", "select_s",
                                          "annotate_train_eval_s", "prefect_s"))
        sizes[n] = z
    growth = {op: sizes[8192][op] / sizes[512][op] for op in ("merge_s", "select_s")}
    return {"measured_sampling": measured, "sampling_linearity": linearity, "sizes": sizes,
            "growth_8192_over_512": growth, "nlogn_ratio": 16 * math.log(8192) / math.log(512),
            "per_task_prefect_s": per_task_s, "uptime": [load0, uptime()]}


def _select_and_merge(base_samples, n: int, folder: Path, shard_q: int) -> dict:
    """Best-of-3 seconds of merging n questions' sample + probe shards and of EGSS scoring +
    selection, on samples and probes replicated (new ids) from `base_samples`."""
    from elad_core.explanations.steps import split_steps
    from elad_core.explanations.records import Probe, Sample, to_rows
    from elad_core.files import hash_file, write_parquet
    from elad_core.elad.selectors import make_selector
    from elad_core.refs import FileRef
    from tasks.elad.select import score_and_select
    from tasks.elad.shards import merge_shards

    k = max(s.sample_index for s in base_samples) + 1
    n_base = len(base_samples) // k
    samples, probes = [], []
    for i in range(n):
        for s in base_samples[(i % n_base) * k:(i % n_base + 1) * k]:
            samples.append(Sample(f"s{i:05d}", s.sample_index, s.text, s.answer,
                                  s.answer_status, s.answer_logprob, s.n_new_tokens))
            steps = len(split_steps(s.text)[:12])
            probes += [Probe(f"s{i:05d}", s.sample_index, j, s.answer) for j in range(steps + 1)]
    refs = {}
    for kind, records, per_q in (("samples", samples, k), ("probes", probes, None)):
        refs[kind] = []
        qids = sorted({r.question_id for r in records})
        for j in range(0, n, shard_q):
            keep = set(qids[j:j + shard_q])
            path = write_parquet(folder / "shards" / f"{kind}_{j // shard_q:04d}.parquet",
                                 to_rows([r for r in records if r.question_id in keep]))
            refs[kind].append(FileRef(path=str(path), sha=hash_file(path)))
    merge, select = [], []
    with TreeRSS() as rss:
        for _ in range(3):
            t0 = time.perf_counter()
            s_ref = merge_shards.fn(refs["samples"], folder / "samples.parquet")
            p_ref = merge_shards.fn(refs["probes"], folder / "probes.parquet")
            merge.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            score_and_select.fn(make_selector("egss"), "egss", s_ref, p_ref, [f"s{i:05d}" for i in range(192)], 64,
                                1, folder)
            select.append(time.perf_counter() - t0)
    return {"merge_s": min(merge), "select_s": min(select), "select_rss_bytes": rss.peak_self}


# ---------------------------------------------------------------- the table

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(res: dict) -> str:
    rows = []
    if "sampling" in res:
        s = res["sampling"]
        rows.append(("1 sampling: batched vs per-question loop",
                     f"{s['batched_expl_per_s']:.1f} vs {s['loop_expl_per_s']:.1f} expl/s = "
                     f"{s['speedup']:.1f}x ({s['batched_tokens_per_s']:.0f} vs "
                     f"{s['loop_tokens_per_s']:.0f} tokens/s)", ">= 5x", verdict(s["speedup"] >= 5),
                     s["uptime"]))
        rows.append(("2 EGSS probes / sampling time",
                     f"{s['probe_s']:.1f} s / {s['batched_s']:.1f} s = {s['probe_over_sampling']:.2f}"
                     f" ({s['probes']} probes)", "<= 0.5", verdict(s["probe_over_sampling"] <= 0.5),
                     s["uptime"]))
    for t in res.get("teacher", []):
        target = 0.95 * t["limit_per_s"] if t["concurrency"] == 32 else 500.0
        rows.append((f"3 teacher c={t['concurrency']}, {t['processes']} process(es)",
                     f"{t['requests_per_s']:.1f} req/s ({t['pct_of_limit']:.0f}% of "
                     f"{t['limit_per_s']:.0f}); CPU/req client {t['client_cpu_ms_per_request']:.2f}"
                     f" ms, oracle {t['server_cpu_ms_per_request']:.2f} ms "
                     f"({t['server_cpu_share_pct']:.0f}%); all of 2 idle cores would give "
                     f"{t['cpu_ceiling_per_s']:.0f}/s ({t['cpu_ceiling_remote_per_s']:.0f}/s with "
                     "the teacher elsewhere)", f">= {target:.0f}/s",
                     verdict(t["requests_per_s"] >= target), t["uptime"]))
    if "orchestration" in res:
        o = res["orchestration"]
        for r in o["rounds"]:
            rows.append((f"4 Prefect share, round {r['round']}",
                         f"{r['prefect_s']:.2f} s of {r['wall_s']:.1f} s = {r['prefect_pct']:.1f}% "
                         f"({r['tasks']} task runs)", "<= 10%", verdict(r["prefect_pct"] <= 10),
                         o["uptime"]))
            rows.append((f"4 cached re-run, round {r['round']}",
                         f"{r['rerun_wall_s']:.2f} s / {r['wall_s']:.1f} s = {r['rerun_pct']:.1f}%",
                         "<= 5%", verdict(r["rerun_pct"] <= 5), o["uptime"]))
        rows.append(("4 Prefect + flow bookkeeping, whole job",
                     f"{o['first_wall_s'] - o['job_task_run_s']:.1f} s of {o['first_wall_s']:.1f} s"
                     f" = {o['job_prefect_pct']:.1f}% (data prep, student build, round subflows,"
                     " oracle start)", "<= 10%", verdict(o["job_prefect_pct"] <= 10), o["uptime"]))
        rows.append(("4 cached re-run, whole job",
                     f"{o['rerun_wall_s']:.1f} s / {o['first_wall_s']:.1f} s = {o['rerun_pct']:.1f}%"
                     f", teacher requests {o['rerun_teacher_requests']}", "<= 5%",
                     verdict(o["rerun_pct"] <= 5), o["uptime"]))
        gib = o["peak_rss_tree_bytes"] / 2**30
        rows.append(("5 peak RSS, default run (process tree)",
                     f"{gib:.2f} GiB (this process {o['peak_rss_self_bytes'] / 2**30:.2f} GiB)",
                     "<= 4 GB", verdict(o["peak_rss_tree_bytes"] <= 4e9), o["uptime"]))
    if "scale" in res:
        sc = res["scale"]
        rows.append(("5 sampling linear (s per question, 2nd / 1st size)",
                     f"{sc['sampling_linearity']:.2f}", "~1 (0.8-1.25)",
                     verdict(0.8 <= sc["sampling_linearity"] <= 1.25), sc["uptime"]))
        for op, g in sc["growth_8192_over_512"].items():
            rows.append((f"5 {op[:-2]} time 8192 / 512", f"{g:.1f}x (linear 16x)",
                         f"<= n log n ({sc['nlogn_ratio']:.1f}x)", verdict(g <= sc["nlogn_ratio"]),
                         sc["uptime"]))
        for n, z in sc["sizes"].items():
            rows.append((f"5 round at pool {n} (sampling, probes extrapolated)",
                         f"{z['round_s']:.0f} s = sample {z['sample_s']:.0f} + probe "
                         f"{z['probe_s']:.0f} + merge {z['merge_s']:.2f} + select "
                         f"{z['select_s']:.2f} + annotate/train/eval "
                         f"{z['annotate_train_eval_s']:.0f} + Prefect {z['prefect_s']:.1f}; "
                         f"process RSS merging/selecting {z['select_rss_bytes'] / 2**30:.2f} GiB", "report", "-",
                         sc["uptime"]))
    lines = ["| measure | figure | target | result | uptime load (start / end) |",
             "|---|---|---|---|---|"]
    lines += [f"| {m} | {f} | {t} | {v} | {u[0]} / {u[1]} |" for m, f, t, v, u in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "throughput.json")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    import torch
    from prefect.testing.utilities import prefect_test_harness

    res: dict = {"quick": args.quick, "uptime_start": uptime(), "cpus": os.cpu_count(),
                 "torch_threads": torch.get_num_threads(),
                 "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=180):
        root = Path(tmp)
        # the default run first: its peak RSS must not count the teacher part's workers
        if parts & {"orchestration", "sampling", "scale"}:
            run = default_run(root, args.quick)
            if "orchestration" in parts:
                res["orchestration"] = run
            if "sampling" in parts:
                res["sampling"] = sampling(run, args.quick)
            if "scale" in parts:
                res["scale"] = scale(run, root, args.quick)
        if "teacher" in parts:
            res["teacher"] = teacher(root, args.quick)
    res["uptime_end"] = uptime()
    print(table(res))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
