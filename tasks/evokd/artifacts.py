"""EvoKD's round artifacts (docs/design.md §2.5): manifest.json, the batch table (texts,
teacher labels, the student's prediction before training on them) and the metrics markdown;
per run (flows/evokd/loop.py) the F1 / token curve (tasks.artifacts.publish_run)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from elad_core.files import read_parquet, write_json
from tasks import CONTENT_CACHE
from tasks.artifacts import MAX_ROWS, artifact_key, metrics_markdown

METRICS = ("new_examples", "batch_statuses", "teacher_tokens", "cost_usd", "feedback_accuracy",
           "f1", "accuracy", "train_examples", "train_loss", "wall_s")
CURVE = ("round", "method", "new_examples", "cumulative_teacher_tokens", "f1", "accuracy",
         "feedback_accuracy", "train_loss")


@task(cache_policy=CONTENT_CACHE - "manifest")
def publish_evokd_round(run_name: str, round_dir: Path, outputs: dict, manifest: dict) -> None:
    """manifest.json + the round's Prefect artifacts: the batch table (texts, teacher
    labels, the student's prediction before training) and a metrics markdown. Cached on
    `outputs` (content hashes), so a cached re-run keeps the first manifest."""
    round_dir = Path(round_dir)
    write_json(round_dir / "manifest.json", manifest)
    r = manifest["round"]
    batch = read_parquet(round_dir / "batch.parquet") if (round_dir / "batch.parquet").exists() else []
    fb = {f["id"]: f for f in (read_parquet(round_dir / "feedback.parquet")
                               if (round_dir / "feedback.parquet").exists() else [])}
    create_table_artifact(
        key=artifact_key(run_name, f"round-{r:03d}-batch"),
        table=[{"origin": b["origin"], "text": b["text"][:160], "teacher_label": b["label"],
                "student_before": fb.get(b["id"], {}).get("prediction"), "status": b["status"]}
               for b in batch[:MAX_ROWS]],
        description=f"Round {r} ({manifest['method']}): new texts, the teacher's labels and "
                    "the student's prediction before training on them.")
    create_markdown_artifact(key=artifact_key(run_name, f"round-{r:03d}-metrics"),
                             markdown=metrics_markdown(
                                 f"Round {r}: {manifest['method']}", manifest, METRICS,
                                 {"Teacher's analysis": manifest.get("analysis")}),
                             description=f"Round {r}: metrics and teacher tokens.")
