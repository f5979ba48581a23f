"""One ELAD round as a Prefect flow of cached tasks; reads as docs/design.md §2 steps 1-8.

Round 0 is the seed round: B0 random questions annotated with the seed annotator (CoT).
Later rounds: sample K explanations per remaining pool question, score them with the
selector (EGSS probes when it needs them), annotate the top-B with the teacher (CLEAR),
add them to the annotated set D, fine-tune the student on D and evaluate it.
Shards are submitted with .submit() to the flow's task runner: by default one thread, i.e.
one shard after another; the loop swaps in the configured runner (flows/runners.py, e.g. a
Dask cluster) with .with_options(task_runner=...).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import NamedTuple

from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.task_runners import ThreadPoolTaskRunner

from elad_core.budget import BatchGate, Budget
from elad_core.elad.config import RunConfig
from elad_core.elad.plan import RoundPlan, plan_round
from elad_core.elad.prompts import PROMPT_VERSION
from elad_core.explanations.records import Annotation, Sample, from_rows
from elad_core.elad.reply_quality import raw_excerpt, unusable_stop
from elad_core.elad.rounds import annotation_requests, chunks
from elad_core.elad.round_record import RoundRecord, round_record
from elad_core.elad.selection_report import selection_report
from elad_core.files import read_parquet
from elad_core.elad.state import BudgetState, RoundResult, RoundState
from elad_core.refs import FileRef
from elad_core.seeds import derive_seed
from elad_core.student import default_train_mode
from elad_core.timing import StepTimer
from flows.elad.round_budget import budget_from_run_folder
from flows.elad.select import Selection, select_questions
from tasks import in_run
from tasks.elad.annotate import ELAD_REPLY_FIELDS, annotate_batch_task
from tasks.elad.artifacts import publish_round
from tasks.elad.prepare import read_examples
from tasks.elad.shards import merge_shards
from tasks.elad.student import evaluate_student, fine_tune_student
from tasks.teacher import with_retry_policy


@flow(name="distill-round", task_runner=ThreadPoolTaskRunner(max_workers=1))
def distill_round(config: RunConfig, round_index: int, state: RoundState) -> RoundResult:
    """Run round `round_index` from the loop's `state` (elad_core.elad.state.RoundState).

    Returns the round's record (its manifest: counts, teacher tokens, cost, accuracy,
    losses) with the new weights and D's annotation batches. Sampling and probe shards run
    on the flow's task runner (concurrently on a Dask runner); the other steps run in the
    flow's process.
    """
    t_round, timer = time.perf_counter(), StepTimer()
    run_dir = config.run_dir.resolve()
    rdir = run_dir / f"round_{round_index:03d}"
    data, student = state.data, state.student
    pool = read_examples(data.pool)
    questions = {e.id: e.question for e in pool}
    family, sc = config.data.answer_family, config.student
    plan = plan_round(config, round_index, len(pool) - len(state.annotated))
    annotator = plan.annotator
    # a slot of the server-wide GPU limit around each student step (a no-op if unset)
    gpu = functools.partial(concurrency, sc.concurrency_limit or [])

    # [1]-[3] which questions the teacher sees (flows/elad/select.py)
    picked = select_questions(config, plan, state, pool, timer, gpu)
    selected, samples_ref = picked.selected, picked.samples_ref

    # [4] the teacher annotates the selected questions, batch by batch (cached, retried),
    # never sending a batch that would take the run or round past a budget, and stopping
    # when the replies paid for so far are unusable (elad_core.elad.reply_quality)
    samples = from_rows(Sample, read_parquet(Path(samples_ref.path))) if samples_ref else None
    requests = annotation_requests(selected, questions, samples if annotator != "cot" else None)
    budget = state.budget or budget_from_run_folder(config, round_index, state, pool)
    gate = BatchGate(Budget.from_config(config), budget.spent, budget.per_annotation)
    annotate = with_retry_policy(in_run(annotate_batch_task, run_dir), config.teacher)
    gold = {e.id: e.answer for e in pool}
    batch_refs, cached_batches, teacher_stop = [], 0, None
    with timer("annotate"):
        for j, batch in enumerate(chunks(requests, config.teacher.batch_size)):
            if not gate.allows(len(batch)):
                break
            st = annotate(annotator, batch,
                          teacher_key=config.teacher.reply_key(PROMPT_VERSION, *ELAD_REPLY_FIELDS),
                          teacher_cfg=config.teacher,
                          api_base=state.api_base, family=family,
                          out_path=rdir / "shards" / f"annotations_{j:04d}.parquet",
                          gold={r.question_id: gold[r.question_id] for r in batch},
                          run=str(run_dir), return_state=True)
            ref = st.result()
            gate.add(ref.teacher_tokens, ref.cost_usd, len(ref.statuses))
            batch_refs.append(ref)
            cached_batches += st.name == "Cached"
            teacher_stop = unusable_stop([x for b in batch_refs for x in b.statuses],
                                         config.teacher.min_usable_fraction)
            if teacher_stop:
                bad = [a for a in from_rows(Annotation, read_parquet(Path(ref.path)))
                       if a.status != "ok"]
                teacher_stop += f"; e.g. {raw_excerpt(bad[0])}" if bad else ""
                break
        annotations_ref = in_run(merge_shards, run_dir)(batch_refs, rdir / "annotations.parquet")

    annotation_files = state.annotation_files + tuple(batch_refs)
    paid = TeacherStep(annotations_ref, budget, gate, len(batch_refs), cached_batches)
    if teacher_stop:  # [8] only: nothing usable to train on; the run stops here
        return _stopped_round(config, plan, state, rdir, questions, picked, paid,
                              teacher_stop, timer, t_round)

    # [5] D <- D ∪ Dⁿ   [6] fine-tune the student on D
    mode = config.train.mode if config.train.mode != "auto" else default_train_mode(sc.model)
    keep_going = config.train.continue_from_last
    keep_going = (mode == "full") if keep_going is None else keep_going
    with gpu(), timer("train"):
        trained = in_run(fine_tune_student, run_dir)(
            student, state.weights if keep_going else None, data, list(annotation_files),
            config.train, mode, derive_seed(config.seed, "train", round_index), sc.device,
            rdir / ("adapter" if mode == "lora" else "model"), config.runner.train_processes,
            config.teacher.filter_wrong_teacher)
    new_weights = FileRef(path=trained.path, sha=trained.sha)

    # [7] evaluate on the held-out split
    with gpu(), timer("evaluate"):
        metrics = in_run(evaluate_student, run_dir)(
            student, new_weights, data, config.eval, family, sc.device, rdir / "eval.json")

    # [8] the round's manifest and Prefect artifacts
    annotations = from_rows(Annotation, read_parquet(Path(annotations_ref.path)))
    record = _record(config, plan, picked, paid, annotations, timer, t_round,
                     trained=trained.model_dump(), train_mode=mode, metrics=metrics,
                     previous_accuracy=state.last_accuracy, student=student.model_dump(),
                     selection=selection_report(annotations, _control_ids(rdir), samples))
    outputs = {"annotations": annotations_ref.sha, "weights": new_weights.sha,
               "eval": metrics, "selected": selected}
    in_run(publish_round, run_dir)(config.run_name, rdir, outputs, record.as_dict(), questions)
    # D grows by the questions sent to the teacher (a budget stop may leave selected ones)
    return RoundResult(record=record, selected_ids=tuple(a.question_id for a in annotations),
                       weights=new_weights, annotation_files=annotation_files)


class TeacherStep(NamedTuple):
    """What step [4] paid for: the merged annotations' ref, the round's budget state and
    gate, and how many teacher batches ran (and how many of them came from the cache)."""

    annotations_ref: FileRef
    budget: BudgetState
    gate: BatchGate
    batches: int
    cached_batches: int


def _record(config: RunConfig, plan: RoundPlan, picked: Selection, paid: TeacherStep,
            annotations: list[Annotation], timer: StepTimer, t_round: float,
            **outcome) -> RoundRecord:
    """The round's record (its manifest, elad_core.elad.rounds.round_record) from the plan,
    steps [1]-[4] and `outcome` (training, evaluation, or why the round stopped)."""
    return round_record(
        round_index=plan.round_index, selector=plan.selector, annotator=plan.annotator,
        prompt_version=PROMPT_VERSION, selected=picked.selected, annotations=annotations,
        budget_stop=paid.gate.stop, budget_estimate=paid.budget.estimate,
        batches=paid.batches, cached_batches=paid.cached_batches,
        shards=[s.model_dump() for s in picked.shards] if picked.shards is not None else None,
        step_wall_s=timer.wall_s, wall_s=time.perf_counter() - t_round,
        config=config.model_dump(mode="json"),
        auto_choice=picked.auto_choice.model_dump() if picked.auto_choice else None, **outcome)


def _stopped_round(config: RunConfig, plan: RoundPlan, state: RoundState, rdir: Path,
                   questions: dict[str, str], picked: Selection, paid: TeacherStep,
                   teacher_stop: str, timer: StepTimer, t_round: float) -> RoundResult:
    """The record of a round stopped for unusable teacher replies: what was paid for and
    why, no training or evaluation; the weights stay the previous round's."""
    annotations = from_rows(Annotation, read_parquet(Path(paid.annotations_ref.path)))
    record = _record(config, plan, picked, paid, annotations, timer, t_round, trained=None,
                     train_mode=None, metrics=None, teacher_stop=teacher_stop)
    in_run(publish_round, config.run_dir.resolve())(
        config.run_name, rdir, {"annotations": paid.annotations_ref.sha,
                                "stop": teacher_stop}, record.as_dict(), questions)
    return RoundResult(record=record, selected_ids=(), weights=state.weights,
                       annotation_files=state.annotation_files)


def _control_ids(rdir: Path) -> set[str]:
    """The round's random control slice (selected.parquet's `control` rows; none in round 0)."""
    return {r["question_id"] for r in read_parquet(rdir / "selected.parquet") if r.get("control")}
