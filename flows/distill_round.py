"""One ELAD round as a Prefect flow of cached tasks; reads as docs/design.md §2 steps 1-8.

Round 0 is the seed round: B0 random questions annotated with the seed annotator (CoT).
Later rounds: sample K explanations per remaining pool question, score them with the
selector (EGSS probes when it needs them), annotate the top-B with the teacher (CLEAR),
add them to the annotated set D, fine-tune the student on D and evaluate it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from elad_core.budget import (
    Budget,
    Estimator,
    Usage,
    batch_refusal,
    estimator_for,
    read_history,
    round_refusal,
)
from elad_core.config import RunConfig
from elad_core.files import read_parquet
from elad_core.prompts import PROMPT_VERSION
from elad_core.records import Annotation, Sample, from_rows
from elad_core.rounds import annotation_requests
from elad_core.selectors import make_selector
from elad_core.student import default_train_mode
from tasks import in_run
from tasks.artifacts import publish_round
from tasks.data import read_examples
from tasks.selection import merge_shards, score_and_select, select_seed
from tasks.student import evaluate_student, probe_shard, sample_shard, train_student
from tasks.teacher import annotate_batch_task


class StepTimer:
    """Wall seconds per named step of a round (reported in manifest.json)."""

    def __init__(self) -> None:
        self.wall_s: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.wall_s[name] = self.wall_s.get(name, 0.0) + time.perf_counter() - t0


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _results(futures: list[PrefectFuture]) -> list:
    """Wait for submitted shard tasks; their results in submission order (raises on failure)."""
    return [f.result() for f in futures]


def round_budget(config: RunConfig, estimator: Estimator, rounds: list[dict], r: int,
                 pool_left: int) -> tuple[str | None, dict]:
    """(why round r must not start (a budget) or None, round r's budget state for
    distill_round: spend so far, estimated usage per annotation and for the round).

    rounds: the earlier rounds' records; pool_left: pool questions not yet annotated (> 0).
    """
    sel, teacher = config.selection, config.teacher
    annotator = teacher.seed_annotator if r == 0 else teacher.annotator
    est = estimator.round(r, annotator, min(sel.seed_size if r == 0 else sel.per_round,
                                            pool_left), rounds)
    spent = Usage(sum(x["teacher_tokens"] for x in rounds), sum(x["cost_usd"] for x in rounds))
    return round_refusal(Budget.from_config(config), est, spent), {
        "spent": [spent.teacher_tokens, spent.cost_usd],
        "per_annotation": [est.per_annotation.teacher_tokens, est.per_annotation.cost_usd],
        "estimate": {"teacher_tokens": round(est.usage.teacher_tokens),
                     "cost_usd": round(est.usage.cost_usd, 6), "basis": est.basis}}


def _missing_plan(config: RunConfig, round_index: int, state: dict, pool: list) -> dict:
    """Round `round_index`'s budget state when distill_round runs on its own (no loop built it):
    the earlier rounds' records are the manifests in the run folder, as for `elad plan`."""
    history = [r for r in read_history(config.run_dir.resolve()) if r["round"] < round_index]
    estimator = estimator_for(config.teacher, [e.question for e in pool])
    pool_left = max(1, len(pool) - len(state["annotated"]))
    return round_budget(config, estimator, history, round_index, pool_left)[1]


# Shards are submitted with .submit() to the flow's task runner: by default one thread, i.e.
# one shard after another; active_distillation swaps in the configured runner (flows/runners.py,
# e.g. a Dask cluster) with .with_options(task_runner=...).
@flow(name="distill-round", task_runner=ThreadPoolTaskRunner(max_workers=1))
def distill_round(config: RunConfig, round_index: int, state: dict) -> dict:
    """Run round `round_index`. state: data / student / weights refs, annotated ids, shards, api_base.

    Returns the round record: counts, teacher tokens, cost, accuracy, losses, new refs.
    Sampling and probe shards run on the flow's task runner (concurrently on a Dask runner);
    the other steps run in the flow's process.
    """
    t_round = time.perf_counter()
    run_dir = config.run_dir.resolve()
    rdir = run_dir / f"round_{round_index:03d}"
    data, student, weights = state["data"], state["student"], state["weights"]
    pool = read_examples(data["pool"])
    questions = {e.id: e.question for e in pool}
    family, sc, timer = config.data.answer_family, config.student, StepTimer()
    sampling = sc.model_dump(include={"k_samples", "temperature", "max_new_tokens",
                                      "generate_batch_size", "device"})
    seed_round = round_index == 0
    selector = "random" if seed_round else config.selection.selector
    samples_ref = None
    # a slot of the server-wide GPU limit around each student step (a no-op if unset)
    gpu = functools.partial(concurrency, sc.concurrency_limit or [])

    if seed_round:  # [3] the untrained student carries no signal: B0 random questions
        with timer("select"):
            selected = in_run(select_seed, run_dir)(
                data["pool"], data["pool_sha"], config.selection.seed_size, config.seed,
                rdir / "selected.parquet")
    else:
        # [1] the student samples K explanations per not-yet-annotated pool question
        annotated = set(state["annotated"])  # once, not per pool question
        remaining = [e.id for e in pool if e.id not in annotated]
        with gpu(), timer("sample"):
            shards = _results([in_run(sample_shard, run_dir).submit(
                student, weights, data["pool"], data["pool_sha"], ids, sampling, family,
                config.seed * 100_003 + round_index * 1_009 + j, rdir / "shards" / f"samples_{j:04d}.parquet")
                for j, ids in enumerate(_chunks(remaining, sc.shard_questions))])
            samples_ref = in_run(merge_shards, run_dir)(shards, rdir / "samples.parquet")
        # [2] uncertainty per question (EGSS probes every step prefix of every sample)
        probes_ref = None
        if make_selector(selector, config.selection.egss_lambda).needs_probes:
            probing = sc.model_dump(include={"probe_max_new_tokens", "probe_batch_size",
                                             "max_probe_steps", "device"})
            with gpu(), timer("probe"):
                probe_shards = _results([in_run(probe_shard, run_dir).submit(
                    student, weights, data["pool"], data["pool_sha"], s, probing, family,
                    rdir / "shards" / f"probes_{j:04d}.parquet") for j, s in enumerate(shards)])
                probes_ref = in_run(merge_shards, run_dir)(probe_shards, rdir / "probes.parquet")
        # [3] the top-B not yet annotated
        with timer("select"):
            selected = in_run(score_and_select, run_dir)(
                selector, config.selection.egss_lambda, samples_ref, probes_ref, state["annotated"],
                config.selection.per_round, config.seed + round_index, rdir)

    # [4] the teacher annotates the selected questions, batch by batch (cached, retried)
    annotator = config.teacher.seed_annotator if seed_round else config.teacher.annotator
    samples = from_rows(Sample, read_parquet(Path(samples_ref["path"]))) if samples_ref else None
    requests = annotation_requests(selected, questions, samples if annotator != "cot" else None)
    teacher_key = {**config.teacher.model_dump(include={
        "model", "temperature", "max_tokens", "max_clear_turns", "filter_wrong_teacher",
        "input_cost_per_1m_usd", "output_cost_per_1m_usd"}), "prompt_version": PROMPT_VERSION}
    task = in_run(annotate_batch_task, run_dir).with_options(
        retries=config.teacher.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=config.teacher.retry_delay_s))
    batch_refs, cached_batches, budget_stop = [], 0, None
    # the loop's budget state; run on its own (no loop), the round builds it: never unchecked
    plan = state.get("budget") or _missing_plan(config, round_index, state, pool)
    gold = {e.id: e.answer for e in pool}
    with timer("annotate"):
        for j, batch in enumerate(_chunks(requests, config.teacher.batch_size)):
            # never send a batch that would take the run or round past a budget
            budget_stop = batch_refusal(
                Budget.from_config(config), Usage(*plan["spent"]),
                Usage(sum(b["teacher_tokens"] for b in batch_refs),
                      sum(b["cost_usd"] for b in batch_refs)),
                sum(len(b["statuses"]) for b in batch_refs), Usage(*plan["per_annotation"]),
                len(batch))
            if budget_stop:
                break
            st = task(annotator, [r.__dict__ for r in batch], teacher_key=teacher_key,
                      teacher_cfg=config.teacher.model_dump(mode="json"), api_base=state["api_base"],
                      family=family, out_path=rdir / "shards" / f"annotations_{j:04d}.parquet",
                      gold={r.question_id: gold[r.question_id] for r in batch},
                      run=str(run_dir), return_state=True)
            batch_refs.append(st.result())
            cached_batches += st.name == "Cached"
        annotations_ref = in_run(merge_shards, run_dir)(batch_refs, rdir / "annotations.parquet")

    # [5] D <- D ∪ Dⁿ   [6] fine-tune the student on D
    annotation_files = state["annotation_files"] + batch_refs
    mode = config.train.mode if config.train.mode != "auto" else default_train_mode(sc.model)
    keep_going = config.train.continue_from_last
    keep_going = (mode == "full") if keep_going is None else keep_going
    with gpu(), timer("train"):
        trained = in_run(train_student, run_dir)(
            student, weights if keep_going else {}, data["pool"], data["pool_sha"], annotation_files,
            config.train.model_dump(mode="json"), mode, config.seed, sc.device,
            rdir / ("adapter" if mode == "lora" else "model"), config.runner.train_processes,
            config.teacher.filter_wrong_teacher)
    new_weights = {"path": trained["path"], "sha": trained["sha"]}

    # [7] evaluate on the held-out split
    with gpu(), timer("evaluate"):
        metrics = in_run(evaluate_student, run_dir)(
            student, new_weights, data["eval"], data["eval_sha"], config.eval.model_dump(),
            family, sc.device, rdir / "eval.json")

    # [8] the round's manifest and Prefect artifacts
    annotations = from_rows(Annotation, read_parquet(Path(annotations_ref["path"])))
    losses = trained["losses"]
    tail = max(1, len(losses) // 10)
    record = {
        "round": round_index, "selector": selector, "annotator": annotator,
        "prompt_version": PROMPT_VERSION, "selected": len(selected),
        "annotated": len(annotations), "budget_stop": budget_stop,
        "budget_estimate": plan.get("estimate"),
        "annotations_ok": sum(a.status == "ok" for a in annotations),
        "annotation_statuses": {s: sum(a.status == s for a in annotations)
                                for s in sorted({a.status for a in annotations})},
        "train_examples": trained["n_examples"], "train_mode": mode,
        # this round's ok annotations whose answer disagrees with the gold answer, and the
        # annotations of D that training left out for it (teacher.filter_wrong_teacher)
        "teacher_wrong": sum(a.teacher_agrees is False for a in annotations),
        "teacher_wrong_dropped": trained.get("skipped", {}).get("teacher_wrong", 0),
        "precision": trained.get("precision"),
        "teacher_tokens": sum(a.teacher_tokens for a in annotations),
        "cost_usd": round(sum(a.cost_usd for a in annotations), 6),
        "teacher_batches": len(batch_refs), "teacher_batches_cached": cached_batches,
        "accuracy": metrics["accuracy"], "parse_rate": metrics["parse_rate"],
        "eval_loss": metrics["eval_loss"],
        "train_loss": sum(losses[-tail:]) / tail, "train_loss_first": sum(losses[:tail]) / tail,
        "sampled_new_tokens": sum(s.get("new_tokens", 0) for s in shards) if samples_ref else 0,
        "sample_compute_s": sum(s.get("wall_s", 0.0) for s in shards) if samples_ref else 0.0,
        "step_wall_s": timer.wall_s, "wall_s": time.perf_counter() - t_round,
        "config": config.model_dump(mode="json"),
    }
    outputs = {"annotations": annotations_ref["sha"], "weights": new_weights["sha"],
               "eval": metrics, "selected": selected}
    in_run(publish_round, run_dir)(config.run_name, rdir, outputs, record, questions)
    return {**record, "selected_ids": selected, "weights": new_weights,
            "annotation_files": annotation_files}
