"""EvoKD student tasks (docs/design.md §2.5 steps 1, 5, 6): train, feedback predictions on
a batch, evaluation on the fixed test subset. Cached on content: inputs carry the base
model's and the weights' content hashes."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task

from elad_core.evokd.metrics import task_metrics
from elad_core.evokd.rounds import feedback_rows
from elad_core.evokd.state import BatchRef, FeedbackRef, StudentSpec, TrainedRef
from elad_core.files import hash_dir, hash_file, write_json, write_parquet
from elad_core.refs import FileRef
from tasks import CONTENT_CACHE
from tasks.evokd.prepare import read_rows


@task(cache_policy=CONTENT_CACHE)
def train_evokd(student: StudentSpec, kind: str, labels: list[str], init: FileRef | None,
                examples: list[dict], train_cfg: dict, steps: int, seed: int,
                out_dir: Path) -> TrainedRef:
    """Continue training from `init` (None = base) on (text, label) rows (docs/design.md
    §2.5 step 5)."""
    from elad_core.evokd.config import EvoKDTrainConfig
    from elad_core.evokd.student import train_classifier

    res = train_classifier(student.base, kind, labels, Path(init.path) if init else None,
                           [(e["text"], e["label"]) for e in examples],
                           EvoKDTrainConfig(**train_cfg), student.mode, steps, Path(out_dir),
                           seed, student.device, student.max_length, student.bf16,
                           student.num_threads)
    return TrainedRef(path=str(out_dir), sha=hash_dir(Path(out_dir)), losses=res.losses,
                      n_examples=res.n_examples, wall_s=res.wall_s, precision=res.precision)


@task(cache_policy=CONTENT_CACHE)
def feedback_on_batch(student: StudentSpec, kind: str, labels: list[str],
                      weights: FileRef | None, batch: BatchRef, out_path: Path) -> FeedbackRef:
    """The student's predictions on a batch's labelled rows -> feedback.parquet (step 1)."""
    from elad_core.evokd.student import predict

    rows = [r for r in read_rows(batch) if r["status"] == "ok"]
    preds = predict(student.base, kind, labels, Path(weights.path) if weights else None,
                    [r["text"] for r in rows], student.max_length, 64, student.device,
                    student.bf16, student.num_threads)
    fb = feedback_rows(rows, preds)
    write_parquet(Path(out_path), fb)
    return FeedbackRef(path=str(out_path), sha=hash_file(out_path), n=len(fb),
                       correct=sum(f["correct"] for f in fb))


@task(cache_policy=CONTENT_CACHE)
def evaluate_evokd(student: StudentSpec, kind: str, labels: list[str], weights: FileRef | None,
                   eval_ref: FileRef, batch_size: int, out_path: Path) -> dict:
    """Metrics of the student on the fixed eval subset -> eval.json (with predictions)."""
    from elad_core.evokd.student import predict

    t0 = time.perf_counter()
    rows = read_rows(eval_ref)
    preds = predict(student.base, kind, labels, Path(weights.path) if weights else None,
                    [r["text"] for r in rows], student.max_length, batch_size, student.device,
                    student.bf16, student.num_threads)
    metrics = {**task_metrics(kind, [r["label"] for r in rows], preds, labels),
               "wall_s": time.perf_counter() - t0}
    write_json(Path(out_path), {**metrics, "predictions": [{"id": r["id"], "prediction": p}
                                                            for r, p in zip(rows, preds, strict=True)]})
    return metrics
