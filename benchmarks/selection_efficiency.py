"""Selection efficiency: student accuracy against teacher tokens, per selector × annotator.

Issues #3 / #14 / #16, docs/design.md §5.2. On the seeded arithmetic word-problem task
(`elad arithmetic-task`, elad_core/synthetic/arithmetic.py: a measuring instrument; a tiny
student trained from scratch cannot learn GSM8K on CPU), every round is the product's own
round flow, `flows.elad.round.distill_round`, driven as `flows/elad/loop.py` drives it:

* a regime `warm<N>` is the size of the warm start. For each (regime, seed) the warm start
  is the product's round 0 (N random questions, CoT by the teacher, `--warm-steps` steps
  from scratch) in its own run folder OUT/<regime>/seed<k>/warm;
* every method `<selector>:<annotator>` of that (regime, seed) then runs rounds 1..R in its
  own run folder OUT/<regime>/seed<k>/<selector>_<annotator>, starting from the warm round's
  state, so all methods share the same warm student (a paired comparison). Each round: a
  seeded random subset of `--candidates` questions not yet annotated
  (`selection.candidates`; the same for every method of a seed in round 1), K sampled
  explanations each (EGSS probes where the selector needs them), the selector ranks them
  (`selection.per_round` = candidates), the teacher annotates them in rank order, batch by
  batch, until the next batch would pass the round's teacher-token budget
  (`max_round_teacher_tokens`, elad_core/budget.py BatchGate), the student continues
  training on everything annotated so far (warm start included) and is evaluated greedily
  on the held-out split.

The round budget is in teacher TOKENS, not questions: annotators that cost more per question
(CLEAR's dialogue) get fewer questions, so methods compare at equal teacher tokens; the exact
tokens spent are recorded. A method `<selector>:cot@<annotator>` has no token budget: each
round it takes CoT on the top N of the same ranking, N being what `<selector>:<annotator>`
bought that round (same seed), so annotators also compare at equal questions. The teacher
is the ORACLE (a test double answering from gold, docs/design.md §2.4), reached through
litellm like a real one. Every task is cached by
Prefect under its run folder, so a killed benchmark resumes, and a rerun reuses the warm
starts.

Output, under OUT (default benchmarks/results/selection_efficiency):
  results.jsonl  one row per (regime, method, seed, round); round 0 is the shared warm start.
                 `teacher_tokens` and `questions` are cumulative and INCLUDE the warm start
                 (`active_teacher_tokens` / `active_questions` leave it out). A row already
                 there (same sizes) is not recomputed.
  summary.md     per regime: mean ± std over seeds per round, the paired difference of every
                 method against random:cot with a 95% t-interval over seeds, what each bought
  curves.png     accuracy against teacher tokens and against questions, a panel per regime

    .venv/bin/python benchmarks/selection_efficiency.py --measure   # time it, project the grid
    .venv/bin/python benchmarks/selection_efficiency.py --workers 2 # the grid (hours)
    .venv/bin/python benchmarks/selection_efficiency.py --quick     # a few minutes, tiny sizes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# first: the offline environment, and the checkout on sys.path
from _common import ROOT, append_row, fmt_seconds, mean_std, read_rows, t_interval

# `<selector>:cot@clear`: CoT on as many questions a round as `<selector>:clear` bought
# (CLEAR against CoT at equal questions; the others compare at equal teacher tokens)
DEFAULT_METHODS = ("random:cot,egss:cot,egss_cost:cot,typical:cot,hybrid:cot,auto:cot,"
                   "random:clear,egss:clear,random:cot@clear,egss:cot@clear")
BASELINE = "random:cot"
ANNOTATORS = ("cot", "clear", "clear_single")
ROW_KEY = ("setup", "regime", "method", "seed", "round")

# docs/design.md §5.1's student shrunk to fit the grid on 2 CPU cores (issue #16): d 128 and
# 2 layers instead of 256 and 4 (0.56 M parameters instead of 3.5 M; a training step 5× faster:
# 0.26 s against 1.29 s at batch 32, one thread, measured in one run). AdamW 2e-3, warm-up 50,
# cosine to 0.1×, batch 32. --hidden 256 --layers 4 gives §5.1's student back. Nothing here
# was tuned on the benchmark's results; the warm-start sizes were chosen from warm-start
# accuracies only (README "Selection efficiency benchmark").
STUDENT = {"vocab_size": 640, "hidden_size": 128, "num_layers": 2, "num_heads": 4,
           "intermediate_size": 344, "max_position_embeddings": 512}
QUICK_STUDENT = {"vocab_size": 400, "hidden_size": 48, "num_layers": 1, "num_heads": 2,
                 "intermediate_size": 96, "max_position_embeddings": 512}
TRAIN = {"batch_size": 32, "lr": 2e-3, "min_lr_ratio": 0.1, "max_length": 256}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="default benchmarks/results/selection_efficiency (…_quick with --quick)")
    p.add_argument("--regimes", default="warm500,warm900",
                   help="comma list of warm<N>: warm-start sizes in CoT examples")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help="comma list of selector:annotator (selector:cot@<annotator>: CoT on "
                        "as many questions a round as selector:<annotator> bought, no token "
                        "budget); selectors not in elad_core.elad.selectors.SELECTORS are "
                        "skipped with a warning")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1")
    p.add_argument("--pool", type=int, default=4000, help="pool questions (unlabelled)")
    p.add_argument("--test", type=int, default=300, help="held-out test questions")
    p.add_argument("--warm-steps", type=int, default=1200,
                   help="training steps of the warm start (unless --warm-epochs)")
    p.add_argument("--warm-epochs", type=float, default=20.0,
                   help="warm-start steps as epochs over the regime's warm set: "
                        "ceil(E × N / batch) steps for warm<N> (the same E for every regime); "
                        "0: --warm-steps for every regime")
    p.add_argument("--hidden", type=int, default=STUDENT["hidden_size"],
                   help="student hidden size (intermediate size 2.6875 × it, as §5.1's 688/256)")
    p.add_argument("--layers", type=int, default=STUDENT["num_layers"], help="student layers")
    p.add_argument("--rounds", type=int, default=2, help="active rounds after the warm start")
    p.add_argument("--candidates", type=int, default=800,
                   help="questions sampled and ranked per round (selection.candidates)")
    p.add_argument("--round-tokens", type=int, default=40_000,
                   help="teacher tokens per active round (max_round_teacher_tokens)")
    p.add_argument("--round-steps", type=int, default=150, help="training steps per active round")
    p.add_argument("--batch", type=int, default=25, help="questions per teacher batch")
    p.add_argument("--k", type=int, default=4, help="explanations sampled per candidate")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--egss-lambda", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=128, help="sampling and evaluation")
    p.add_argument("--ceiling-steps", type=int, default=1200,
                   help="full-pool ceiling (the whole pool, CoT, from scratch); 0: none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1,
                   help="(regime, seed) groups run in this many processes at once")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: torch's with one worker, "
                        "else CPU cores / workers)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (warm40,warm80, 2 rounds, 2 seeds): checks it end to end")
    p.add_argument("--measure", action="store_true",
                   help="time a few training steps, samples, probes and evaluations of the "
                        "configured student through the round flow, print the grid's "
                        "projected wall time, and exit")
    p.add_argument("--measure-steps", type=int, default=30)
    p.add_argument("--summary-only", action="store_true",
                   help="rebuild summary.md and curves.png from results.jsonl")
    a = p.parse_args(argv)
    a.student = dict(STUDENT)
    if not a.warm_epochs:
        a.warm_epochs = None
    if (a.hidden, a.layers) != (STUDENT["hidden_size"], STUDENT["num_layers"]):
        a.student |= {"hidden_size": a.hidden, "num_layers": a.layers,
                      "intermediate_size": round(a.hidden * 688 / 256)}
    if a.quick:
        defaults = {"regimes": "warm500,warm900", "seeds": 3}
        if a.regimes == defaults["regimes"]:
            a.regimes = "warm40,warm80"
        if a.seeds == defaults["seeds"]:
            a.seeds = 2
        # a CLEAR round's first batch is estimated a priori (~1,000 tokens a question): 4 fit
        a.pool, a.test, a.warm_steps, a.rounds, a.candidates = 200, 24, 30, 2, 32
        a.round_tokens, a.round_steps, a.batch, a.k, a.max_new_tokens = 5000, 10, 4, 2, 64
        a.ceiling_steps, a.student, a.warm_epochs = 0, dict(QUICK_STUDENT), None
    if a.out is None:
        a.out = ROOT / "benchmarks" / "results" / (
            "selection_efficiency" + ("_quick" if a.quick else ""))
    a.out = a.out.resolve()
    a.data_dir, a.results = a.out / "data", a.out / "results.jsonl"
    a.regime_list = [r.strip() for r in a.regimes.split(",") if r.strip()]
    for r in a.regime_list:
        if not re.fullmatch(r"warm[1-9][0-9]*", r):
            p.error(f"--regimes: {r!r} is not warm<N>")
        if warm_size(r) >= a.pool:
            p.error(f"--regimes: {r} needs a pool larger than {warm_size(r)} (--pool {a.pool})")
    a.method_list = []
    for m in (x.strip() for x in a.methods.split(",") if x.strip()):
        ann, _, matched = m.partition(":")[2].partition("@")
        if ann not in ANNOTATORS or (matched and matched not in ANNOTATORS):
            p.error(f"--methods: {m!r}: the annotator must be one of {', '.join(ANNOTATORS)}"
                    " (optionally @<annotator>: its questions per round)")
        a.method_list.append(m)
    # a question-matched method runs after the method it matches
    a.method_list.sort(key=lambda m: "@" in m)
    if a.seeds < 1 or a.rounds < 1 or a.workers < 1:
        p.error("--seeds, --rounds and --workers must be at least 1")
    # what decides a row: rows computed with other sizes are never reused
    a.setup = _setup_key(a)
    return a


def warm_size(regime: str) -> int:
    return int(regime.removeprefix("warm"))


def warm_steps(a: argparse.Namespace, regime: str) -> int:
    """The warm start's training steps: --warm-epochs over warm<N>'s N questions, else
    --warm-steps."""
    if a.warm_epochs is None:
        return a.warm_steps
    return max(1, math.ceil(a.warm_epochs * warm_size(regime) / TRAIN["batch_size"]))


def _setup_key(a: argparse.Namespace) -> str:
    from elad_core.files import hash_json

    return hash_json({k: getattr(a, k) for k in (
        "pool", "test", "warm_steps", "warm_epochs", "candidates", "round_tokens", "round_steps",
        "batch", "k",
        "temperature", "egss_lambda", "max_new_tokens", "student", "device")} | {"train": TRAIN})[:12]


def known_methods(methods: list[str]) -> list[str]:
    """The methods whose selector is registered (elad_core.elad.selectors.SELECTORS); the
    others are skipped with a warning (selectors still being added are not an error)."""
    from elad_core.elad.selectors import SELECTORS

    out = []
    for m in methods:
        if m.split(":")[0] in SELECTORS:
            out.append(m)
        else:
            print(f"warning: skipping {m}: selector {m.split(':')[0]!r} is not in SELECTORS "
                  f"({', '.join(SELECTORS)})", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------ the product's round flow

def run_config(a: argparse.Namespace, seed: int, runs_dir: Path, run_name: str, *,
               selector: str = "random", annotator: str = "cot", seed_size: int = 1,
               steps: int, round_tokens: int | None = None, candidates: int | None = None,
               per_round: int | None = None, pool_size: int | None = None,
               eval_size: int | None = None):
    """The RunConfig of one benchmark run folder (the arithmetic task read as `--dataset`)."""
    from elad_core.elad.config import RunConfig

    return RunConfig.model_validate({
        "run_name": run_name, "runs_dir": str(runs_dir), "seed": seed, "rounds": a.rounds + 1,
        "max_round_teacher_tokens": round_tokens,
        "data": {"dataset": str(a.data_dir), "format": "gsm8k", "pool_split": "train",
                 "eval_split": "test", "pool_size": pool_size, "eval_size": eval_size},
        "student": {"embedded": a.student, "k_samples": a.k, "temperature": a.temperature,
                    "max_new_tokens": a.max_new_tokens, "device": a.device},
        "selection": {"selector": selector, "seed_size": seed_size,
                      "per_round": per_round or a.candidates, "candidates": candidates,
                      "egss_lambda": a.egss_lambda},
        # temperature-0 replies are shared by every method and seed (teacher.reply_cache): a
        # reused reply keeps the tokens it was paid at, so methods still compare at equal tokens
        "teacher": {"seed_annotator": "cot", "annotator": annotator, "batch_size": a.batch,
                    "max_concurrency": 16, "reply_cache": str(a.out / "reply_cache")},
        "train": {**TRAIN, "steps": steps, "warmup_steps": min(50, steps // 4)},
        "eval": {"max_new_tokens": a.max_new_tokens},
    })


@contextlib.contextmanager
def product_run(config):
    """What flows/elad/loop.py does before its rounds: pre-flight, the data and the student
    base (cached tasks), the teacher endpoint (the oracle, for as long as the block runs).
    Yields (RoundState, the pool's Examples, the budget Estimator)."""
    from elad_core.elad.cost import estimator_for, gold_solutions
    from elad_core.elad.preflight import preflight
    from elad_core.elad.state import RoundState
    from elad_core.teacher.endpoint import teacher_endpoint
    from elad_core.elad.oracle_judge import OracleJudge
    from flows.elad.loop import prepare_run

    run_dir = config.run_dir.resolve()
    preflight(config)
    data, student, pool = prepare_run(config)
    estimator = estimator_for(config.teacher, [e.question for e in pool],
                              solutions=gold_solutions(pool))
    with teacher_endpoint(config.teacher, lambda: OracleJudge(pool),
                          run_dir.parent / "oracle_requests.jsonl") as api_base:
        yield RoundState(data=data, student=student, api_base=api_base), pool, estimator


def run_round(config, r: int, state, pool: list, estimator, history: list[dict], name: str):
    """Round `r` of `config`'s run folder through `distill_round`, from `state`.

    history: the earlier rounds' records (the budget's measured per-annotation estimate).
    Returns (the next RoundState, the round's manifest, its annotation rows, the sampled
    candidate ids) or None when the pool is exhausted.
    """
    from elad_core.files import read_parquet
    from flows.elad.round_budget import round_budget
    from flows.elad.round import distill_round

    pool_left = len(pool) - len(state.annotated)
    from elad_core.elad.round_record import RoundRecord

    _, budget = round_budget(config, estimator, [RoundRecord.from_manifest(m) for m in history],
                             r, pool_left)
    if budget is None:
        return None
    # the boundary check of the loop (an estimated round over max_round_teacher_tokens stops
    # a run) is not applied: here the round budget only ends each round's annotation
    result = distill_round.with_options(flow_run_name=name)(
        config, r, state.model_copy(update={"budget": budget}))
    rdir = config.run_dir.resolve() / f"round_{r:03d}"
    # the manifest on disk is the first computation's (publish_round is cached): real timings
    manifest = json.loads((rdir / "manifest.json").read_text(encoding="utf-8"))
    new = result.annotation_files[len(state.annotation_files):]
    annotations = [row for ref in new for row in read_parquet(Path(ref.path))]
    asked = tuple(row["question_id"] for row in annotations)
    samples = rdir / "samples.parquet"
    candidates = sorted({s["question_id"] for s in read_parquet(samples)}) if samples.exists() else []
    # D grows by the questions the teacher was asked (RoundResult.selected_ids)
    assert result.selected_ids == asked
    nxt = result.next_state(state).model_copy(update={"budget": None})
    return nxt, manifest, annotations, candidates


def _row(a, regime: str, method: str, seed: int, r: int, manifest: dict, annotations: list[dict],
         candidates: list[str], gold_steps: dict[str, int], totals: dict, run_dir: Path) -> dict:
    from elad_core.files import hash_json

    sel, ann = method.split(":")
    ann = ann.partition("@")[0]
    accepted = [x["accepted_steps"] for x in annotations if x.get("accepted_steps") is not None]
    return {
        "setup": a.setup, "regime": regime, "warm": warm_size(regime) if regime != "ceiling" else None,
        "method": method, "selector": sel, "annotator": ann, "seed": seed, "round": r,
        "teacher_tokens": totals["tokens"], "questions": totals["questions"],
        "active_teacher_tokens": totals["tokens"] - totals["warm_tokens"],
        "active_questions": totals["questions"] - totals["warm_questions"],
        "round_teacher_tokens": manifest["teacher_tokens"], "round_questions": len(annotations),
        "round_cost_usd": manifest["cost_usd"], "annotations_ok": manifest["annotations_ok"],
        "budget_stopped": bool(manifest["budget_stop"]),
        "candidates": len(candidates), "candidates_sha": hash_json(candidates)[:16] if candidates else None,
        "accuracy": manifest["accuracy"], "parse_rate": manifest["parse_rate"],
        "eval_loss": manifest["eval_loss"], "train_loss": manifest["train_loss"],
        "train_examples": manifest["train_examples"],
        "gold_steps_mean": statistics.fmean(gold_steps[x["question_id"]] for x in annotations)
        if annotations else None,
        "pool_gold_steps_mean": statistics.fmean(gold_steps.values()),
        "accepted_steps_mean": statistics.fmean(accepted) if accepted and ann != "cot" else None,
        "wall_s": round(manifest["wall_s"], 3), "step_wall_s": manifest["step_wall_s"],
        "run_dir": os.path.relpath(run_dir, a.out),
    }


def _worker_setup(a: argparse.Namespace) -> None:
    import torch

    threads = a.threads or (None if a.workers == 1 else max(1, (os.cpu_count() or 1) // a.workers))
    if threads:
        torch.set_num_threads(threads)


def _say(label: str, msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {label}: {msg}", flush=True)


def run_group(a: argparse.Namespace, regime: str, seed: int, methods: list[str]) -> int:
    """The warm start of (regime, seed) and every method's rounds 1..R after it; appends
    the rows not yet in results.jsonl. Returns how many it appended."""
    _worker_setup(a)
    done = {(r["method"], r["round"]) for r in read_rows(a.results)
            if r.get("setup") == a.setup and r["regime"] == regime and r["seed"] == seed}
    if regime == "ceiling":
        methods, n_warm, rounds, steps = ["all:cot"], a.pool, 0, a.ceiling_steps
        gdir = a.out / "ceiling"
    else:
        n_warm, rounds, steps = warm_size(regime), a.rounds, warm_steps(a, regime)
        gdir = a.out / regime / f"seed{seed}"
    todo = [m for m in methods if any((m, r) not in done for r in range(rounds + 1))]
    if not todo:
        return 0
    label, written = f"{regime} seed {seed}", 0
    warm_cfg = run_config(a, seed, gdir, "warm" if regime != "ceiling" else "all",
                          seed_size=n_warm, steps=steps)
    with product_run(warm_cfg) as (state0, pool, estimator):
        gold_steps = {e.id: len(e.rationale.splitlines()) for e in pool}
        t0 = time.perf_counter()
        warm_state, warm, warm_ann, _ = run_round(warm_cfg, 0, state0, pool, estimator, [],
                                                  f"bench-{regime}-seed{seed}-warm")
        _say(label, f"warm start: {len(warm_ann)} CoT questions, {warm['teacher_tokens']:,} "
                    f"tokens, accuracy {warm['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")
        base = {"warm_tokens": warm["teacher_tokens"], "warm_questions": len(warm_ann)}
        if regime == "ceiling":
            totals = {**base, "tokens": base["warm_tokens"], "questions": base["warm_questions"]}
            return int(append_row(a.results, _row(a, regime, "all:cot", seed, 0, warm, warm_ann,
                                                  [], gold_steps, totals, warm_cfg.run_dir), ROW_KEY))
        for method in todo:
            sel, ann = method.split(":")
            ann, _, matched = ann.partition("@")
            per_round = {}
            if matched:  # e.g. egss:cot@clear: CoT on as many questions a round as egss:clear
                per_round = {r["round"]: r["round_questions"] for r in read_rows(a.results)
                             if r.get("setup") == a.setup and r["regime"] == regime
                             and r["seed"] == seed and r["method"] == f"{sel}:{matched}"}
                if any(r not in per_round for r in range(1, rounds + 1)):
                    _say(label, f"{method}: skipped, {sel}:{matched} has not run all rounds")
                    continue
            totals = {**base, "tokens": base["warm_tokens"], "questions": base["warm_questions"]}
            if append_row(a.results, _row(a, regime, method, seed, 0, warm, warm_ann, [],
                                          gold_steps, totals, warm_cfg.run_dir), ROW_KEY):
                written += 1
            cfg = run_config(a, seed, gdir, f"{sel}_{ann}" + (f"_at_{matched}" if matched else ""),
                             selector=sel, annotator=ann, seed_size=n_warm, steps=a.round_steps,
                             round_tokens=a.round_tokens, candidates=a.candidates)
            state, history = warm_state, [warm]
            for r in range(1, rounds + 1):
                if matched:  # no token budget: the top per_round[r] of the ranked candidates
                    cfg = cfg.model_copy(update={
                        "max_round_teacher_tokens": None, "selection": cfg.selection.model_copy(
                            update={"per_round": per_round[r]})})
                t0 = time.perf_counter()
                out = run_round(cfg, r, state, pool, estimator, history,
                                f"bench-{regime}-seed{seed}-{sel}_{ann}-round-{r:03d}")
                if out is None:
                    _say(label, f"{method}: pool exhausted before round {r}")
                    break
                state, manifest, annotations, candidates = out
                history.append(manifest)
                totals["tokens"] += manifest["teacher_tokens"]
                totals["questions"] += len(annotations)
                row = _row(a, regime, method, seed, r, manifest, annotations, candidates,
                           gold_steps, totals, cfg.run_dir)
                if append_row(a.results, row, ROW_KEY):
                    written += 1
                _say(label, f"{method} round {r}: {len(annotations)} questions, "
                            f"{manifest['teacher_tokens']:,} tokens, accuracy "
                            f"{manifest['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")
    return written


@contextlib.contextmanager
def shared_prefect_server(workers: int):
    """One temporary Prefect API for all worker processes (PREFECT_API_URL), unless one is
    set or a single process runs (it starts its own)."""
    if workers == 1 or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                                            "120")))
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def run_grid(a: argparse.Namespace, methods: list[str]) -> list[str]:
    """Every (regime, seed) group (and the ceiling), `a.workers` at a time; returns the
    groups that failed (each with its error)."""
    groups = [(regime, seed) for regime in a.regime_list for seed in range(a.seeds)]
    if a.ceiling_steps:
        groups.append(("ceiling", 0))
    failed = []
    if a.workers == 1:
        for regime, seed in groups:
            try:
                run_group(a, regime, seed, methods)
            except Exception as exc:  # the other groups still run; reported at the end
                failed.append(f"{regime} seed {seed}: {type(exc).__name__}: {exc}")
                _say(f"{regime} seed {seed}", f"FAILED: {exc!r}")
        return failed
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with shared_prefect_server(a.workers), ProcessPoolExecutor(
            a.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_group, a, regime, seed, methods): (regime, seed)
                   for regime, seed in groups}
        for f in as_completed(futures):
            regime, seed = futures[f]
            try:
                f.result()
            except Exception as exc:
                failed.append(f"{regime} seed {seed}: {type(exc).__name__}: {exc}")
                _say(f"{regime} seed {seed}", f"FAILED: {exc!r}")
    return failed


# ------------------------------------------------------------------------------- --measure

def _needs(selector: str, a: argparse.Namespace, what: str) -> bool:
    """Whether `selector` (with default options) needs probes / embeddings / costs (`what`);
    True when it cannot be built without more options (an upper bound for a projection)."""
    from elad_core.elad.selectors import SelectorOptions, make_selector

    try:
        options = SelectorOptions(egss_lambda=a.egss_lambda)
        return bool(getattr(make_selector(selector, options), what, False))
    except (TypeError, ValueError):
        return True


def measure(a: argparse.Namespace, methods: list[str]) -> str:
    """Time the configured student's steps through two real rounds on a small slice (a
    throw-away run folder) and project the grid's wall time; returns the report."""
    import tempfile

    import torch

    from elad_core.elad.selectors import SELECTORS

    _worker_setup(a)
    n_seed, n_cand, n_eval, steps = 64, 32, min(32, a.test), a.measure_steps
    # round 1's selector: one that needs probes and, if any does, the pool's embeddings too
    both = [s for s in SELECTORS if _needs(s, a, "needs_probes") and _needs(s, a, "needs_embeddings")]
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.out, prefix=".measure-") as tmp:
        cfg = run_config(a, 0, Path(tmp), "measure", selector=(both or ["egss"])[0],
                         annotator="clear",
                         seed_size=n_seed, steps=steps, candidates=n_cand, per_round=n_cand,
                         pool_size=min(a.pool, 400), eval_size=n_eval)
        with product_run(cfg) as (state, pool, estimator):
            state, m0, ann0, _ = run_round(cfg, 0, state, pool, estimator, [], "measure-0")
            _, m1, ann1, cand = run_round(cfg, 1, state, pool, estimator, [m0], "measure-1")
            n_pool = len(pool)
    s0, s1 = m0["step_wall_s"], m1["step_wall_s"]
    t = {"step": s1["train"] / steps, "eval": s1["evaluate"] / n_eval,
         "sample": s1["sample"] / len(cand), "probe": s1.get("probe", 0.0) / len(cand),
         "embed": s1.get("embed", 0.0) / n_pool,
         "cot": s0["annotate"] / len(ann0), "clear": s1["annotate"] / len(ann1),
         "overhead": max(0.0, m1["wall_s"] - sum(s1.values()))}
    tok = {"cot": m0["teacher_tokens"] / len(ann0), "clear": m1["teacher_tokens"] / len(ann1)}
    tok["clear_single"], t["clear_single"] = tok["clear"], t["clear"]

    def warm_s(n: int, train_steps: int) -> float:
        return n * t["cot"] + train_steps * t["step"] + a.test * t["eval"] + t["overhead"]

    def round_s(method: str) -> float:
        sel, ann = method.split(":")
        ann = ann.partition("@")[0]
        probes = t["probe"] if _needs(sel, a, "needs_probes") else 0.0
        embed = a.pool * t["embed"] if _needs(sel, a, "needs_embeddings") else 0.0
        q = min(a.candidates, a.round_tokens / tok[ann])
        return (a.candidates * (t["sample"] + probes) + embed + q * t[ann]
                + a.round_steps * t["step"] + a.test * t["eval"] + t["overhead"])

    lines = [f"measured on {len(cand)} candidates, {n_eval} test questions, {steps} steps "
             f"(torch threads {torch.get_num_threads()}, load average "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):",
             f"  train step {t['step']:.3f} s (batch {TRAIN['batch_size']}); evaluation "
             f"{t['eval']:.3f} s/question; sampling K={a.k} {t['sample']:.3f} s/candidate; "
             f"EGSS probes {t['probe']:.3f} s/candidate; question embeddings "
             + (f"{t['embed']:.4f} s/pool question" if "embed" in s1 else "not measured"),
             f"  teacher (oracle): CoT {t['cot']:.3f} s and {tok['cot']:.0f} tokens per question, "
             f"CLEAR {t['clear']:.3f} s and {tok['clear']:.0f} tokens; round overhead "
             f"{t['overhead']:.1f} s",
             "  (the student here is barely trained: it writes up to --max-new-tokens, so "
             "sampling and evaluation are upper bounds)", "", "projection:"]
    total = 0.0
    for regime in a.regime_list:
        w = warm_s(warm_size(regime), warm_steps(a, regime))
        per = {m: a.rounds * round_s(m) for m in methods}
        group = w + sum(per.values())
        total += group * a.seeds
        lines.append(f"  {regime}: warm start {fmt_seconds(w)}; per method ({a.rounds} rounds) "
                     + ", ".join(f"{m} {fmt_seconds(s)}" for m, s in per.items())
                     + f"; per seed {fmt_seconds(group)}, × {a.seeds} seeds")
    if a.ceiling_steps:
        c = warm_s(a.pool, a.ceiling_steps)
        total += c
        lines.append(f"  full-pool ceiling: {fmt_seconds(c)}")
    lines.append(f"  grid total {fmt_seconds(total)} in one process; with --workers "
                 f"{max(a.workers, 2)} about {fmt_seconds(total / max(a.workers, 2))} if that "
                 "many cores are free (1 torch thread each)")
    return "\n".join(lines)


# ------------------------------------------------------------------------ summary and plots

def _select(a: argparse.Namespace, rows: list[dict], methods: list[str]) -> list[dict]:
    return [r for r in rows if r.get("setup") == a.setup and r["seed"] < a.seeds
            and r["round"] <= a.rounds
            and ((r["regime"] in a.regime_list and r["method"] in methods)
                 or r["regime"] == "ceiling")]


def _by(rows: list[dict], *keys: str) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def summarise(a: argparse.Namespace, rows: list[dict], methods: list[str]) -> str:
    """summary.md: per regime, mean ± std over seeds per round, the paired difference
    against random:cot (95% t-interval over seeds) and what each method bought."""
    rows = _select(a, rows, methods)
    lines = ["# Selection efficiency (the product's round flow; teacher: the oracle test double)", "",
             f"Arithmetic task: pool {a.pool}, test {a.test}; {a.rounds} active rounds of "
             f"{a.candidates} candidates (K = {a.k}, τ = {a.temperature}), "
             f"{a.round_tokens:,} teacher tokens each, {a.round_steps} training steps; warm start "
             + (f"{a.warm_epochs:g} epochs over its questions" if a.warm_epochs is not None
                else f"{a.warm_steps} steps") + f"; student d {a.student['hidden_size']}, "
             f"{a.student['num_layers']} layers. Accuracy % on the test split. Teacher tokens and "
             "questions are cumulative and include the warm start (round 0, shared by every method of a seed)."]
    ceiling = [r for r in rows if r["regime"] == "ceiling"]
    if ceiling:
        lines.append(f"Full-pool ceiling ({a.pool} CoT examples, {a.ceiling_steps} steps from "
                     f"scratch): {100 * ceiling[0]['accuracy']:.1f}%.")
    for regime in a.regime_list:
        rs = [r for r in rows if r["regime"] == regime]
        if not rs:
            continue
        cells = _by(rs, "method", "round")
        present = [m for m in methods if any(k[0] == m for k in cells)]
        lines += ["", f"## {regime} ({warm_size(regime)} CoT examples in the warm start)", "",
                  "| method | seeds | " + " | ".join(f"round {r}" for r in range(a.rounds + 1)) + " |",
                  "|---|---|" + "---|" * (a.rounds + 1)]
        for m in present:
            out = []
            for r in range(a.rounds + 1):
                c = cells.get((m, r), [])
                if not c:
                    out.append("–")
                    continue
                acc = mean_std([100 * x["accuracy"] for x in c])
                tok = statistics.fmean(x["teacher_tokens"] for x in c) / 1000
                q = statistics.fmean(x["questions"] for x in c)
                out.append(f"{acc[0]:.1f} ± {acc[1]:.1f} ({tok:.1f}k tok, {q:.0f} q)")
            n = len({x["seed"] for r in range(a.rounds + 1) for x in cells.get((m, r), [])})
            lines.append(f"| {m} | {n} | " + " | ".join(out) + " |")
        base = {(x["seed"], x["round"]): x for x in rs if x["method"] == BASELINE}
        if base:
            lines += ["", f"Paired difference against {BASELINE} (accuracy points, same seed and "
                      "round; mean [95% t-interval over seeds], n seeds):", "",
                      "| method | " + " | ".join(f"round {r}" for r in range(1, a.rounds + 1)) + " |",
                      "|---|" + "---|" * a.rounds]
            for m in present:
                if m == BASELINE or "@" in m:  # not at equal tokens: the table below
                    continue
                out = []
                for r in range(1, a.rounds + 1):
                    d = [100 * (x["accuracy"] - base[(x["seed"], r)]["accuracy"])
                         for x in cells.get((m, r), []) if (x["seed"], r) in base]
                    ci = t_interval(d)
                    out.append("–" if not d else f"{d[0]:+.1f} (n 1)" if ci is None else
                               f"{ci[0]:+.1f} [{ci[1]:+.1f}, {ci[2]:+.1f}] (n {len(d)})")
                lines.append(f"| {m} | " + " | ".join(out) + " |")
        lines += _equal_questions(rs, cells, present, a.rounds)
        lines += ["", "What each method bought in the active rounds (mean over seeds and rounds): "
                  "questions per round, teacher tokens per question, gold solution steps of the "
                  f"questions it bought (the pool's mean: "
                  f"{statistics.fmean(x['pool_gold_steps_mean'] for x in rs):.2f}), student "
                  "steps the teacher accepted per question (CLEAR).", "",
                  "| method | questions / round | tokens / question | gold steps | accepted steps |",
                  "|---|---|---|---|---|"]
        for m in present:
            act = [x for x in rs if x["method"] == m and x["round"] >= 1]
            if not act:
                continue
            qs = sum(x["round_questions"] for x in act)
            gold = [x["gold_steps_mean"] for x in act if x["gold_steps_mean"] is not None]
            acc = [x["accepted_steps_mean"] for x in act if x["accepted_steps_mean"] is not None]
            lines.append(" | ".join([
                f"| {m}", f"{qs / len(act):.0f}",
                f"{sum(x['round_teacher_tokens'] for x in act) / max(1, qs):.0f}",
                f"{statistics.fmean(gold):.2f}" if gold else "–",
                f"{statistics.fmean(acc):.2f}" if acc else "–"]) + " |")
    wall = sum(r["wall_s"] for r in rows if r["round"] >= 1) + sum(
        r["wall_s"] for r in {(r["regime"], r["seed"]): r for r in rows if r["round"] == 0}.values())
    lines += ["", f"Compute in the rows: {fmt_seconds(wall)} of round wall time (each warm start "
              "counted once)."]
    return "\n".join(lines) + "\n"


def _equal_questions(rs: list[dict], cells: dict, present: list[str], rounds: int) -> list[str]:
    """The annotators at equal QUESTIONS (issue #16 item 3): each `<selector>:cot@<ann>` run
    (CoT on as many questions a round as `<selector>:<ann>` bought with the round's token
    budget, the top of the same ranking, the same training steps) against `<selector>:<ann>`,
    paired per seed and round. The main tables compare at equal teacher tokens."""
    pairs = [(m, m.split(":")[0] + ":" + m.partition("@")[2]) for m in present if "@" in m]
    pairs = [(m, ref) for m, ref in pairs if ref in present]
    if not pairs:
        return []
    out = ["", "Annotators at equal questions: accuracy points of each annotator's run minus CoT "
           "on the same number of questions per round (`<selector>:cot@<annotator>`: no token "
           "budget, the top of the same ranking, the same training steps); mean [95% "
           "t-interval over seeds], n seeds.", "",
           "| method | against | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |",
           "|---|---|" + "---|" * rounds]
    for m, ref in pairs:
        row = []
        for r in range(1, rounds + 1):
            base = {x["seed"]: x for x in cells.get((m, r), [])}
            d = [100 * (x["accuracy"] - base[x["seed"]]["accuracy"])
                 for x in cells.get((ref, r), []) if x["seed"] in base]
            ci = t_interval(d)
            row.append("–" if not d else f"{d[0]:+.1f} (n 1)" if ci is None else
                       f"{ci[0]:+.1f} [{ci[1]:+.1f}, {ci[2]:+.1f}] (n {len(d)})")
        out.append(f"| {ref} | {m} | " + " | ".join(row) + " |")
    return out


def plot(a: argparse.Namespace, rows: list[dict], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _select(a, rows, methods)
    regimes = [g for g in a.regime_list if any(r["regime"] == g for r in rows)]
    if not regimes:
        return
    fig, axes = plt.subplots(2, len(regimes), figsize=(6 * len(regimes), 8), squeeze=False)
    ceiling = [r for r in rows if r["regime"] == "ceiling"]
    for j, regime in enumerate(regimes):
        cells = _by([r for r in rows if r["regime"] == regime], "method", "round")
        for i, (xkey, xlabel, scale) in enumerate((
                ("teacher_tokens", "cumulative teacher tokens (thousands, warm start included)", 1000),
                ("questions", "cumulative questions annotated (warm start included)", 1))):
            ax = axes[i][j]
            for m in methods:
                pts = [cells[(m, r)] for r in range(a.rounds + 1) if (m, r) in cells]
                if not pts:
                    continue
                xs = [statistics.fmean(x[xkey] for x in c) / scale for c in pts]
                ys = [mean_std([100 * x["accuracy"] for x in c]) for c in pts]
                style = "-" if m.endswith(":clear") else "--" if m.endswith(":cot") else ":"
                ax.errorbar(xs, [y[0] for y in ys], yerr=[y[1] for y in ys], label=m,
                            linestyle=style, marker="o", capsize=3)
            if ceiling:
                ax.axhline(100 * ceiling[0]["accuracy"], color="gray", linestyle="-.",
                           label=f"full pool ({a.pool} CoT examples)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("test accuracy %")
            ax.set_title(f"{regime}: warm start {warm_size(regime)} CoT examples; seeds: "
                         f"{len({x['seed'] for c in cells.values() for x in c})}")
            ax.legend(fontsize=7)
    fig.suptitle("Arithmetic task, oracle teacher (test double); mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_summary(a: argparse.Namespace, methods: list[str]) -> str:
    rows = read_rows(a.results)
    text = summarise(a, rows, methods)
    (a.out / "summary.md").write_text(text, encoding="utf-8")
    plot(a, rows, methods, a.out / "curves.png")
    return text


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    methods = known_methods(a.method_list)
    if not methods:
        print("error: no method left to run", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    if a.summary_only:
        print(write_summary(a, methods))
        return 0
    from elad_core.synthetic.arithmetic import write_dataset
    from flows.watchdog import start_watchdog

    start_watchdog()  # nothing this benchmark starts outlives it, even after a SIGKILL
    # the same files as `elad arithmetic-task DIR --pool P --test T --seed 1234` (seeded:
    # rewriting them changes nothing the caches key on, which is their content)
    write_dataset(a.data_dir, {"train": a.pool, "test": a.test}, seed=1234)
    if a.measure:
        print(measure(a, methods))
        return 0
    t0 = time.perf_counter()
    failed = run_grid(a, methods)
    print(write_summary(a, methods))
    print(f"wall time {fmt_seconds(time.perf_counter() - t0)}; rows in {a.results}")
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
