"""ELAD's round artifacts: manifest.json and the round's Prefect tables (docs/design.md §2 step 8).

Per round: the selected-question table, the teacher's revisions and the metrics markdown;
per run (flows/elad/loop.py): the accuracy / token curve (tasks.artifacts.publish_run).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from elad_core.files import read_parquet, write_json
from tasks import CONTENT_CACHE
from tasks.artifacts import MAX_ROWS, artifact_key, metrics_markdown

METRICS = ("selected", "annotations_ok", "teacher_usable_rate", "teacher_gold_agreement",
           "unusable_teacher_tokens", "unusable_cost_usd", "train_examples", "teacher_tokens",
           "cost_usd", "accuracy", "parse_rate", "train_loss", "eval_loss", "wall_s")
CURVE = ("round", "selector", "annotator", "selected", "cumulative_teacher_tokens", "accuracy",
         "train_loss", "eval_loss")


@task(cache_policy=CONTENT_CACHE - "manifest" - "questions")
def publish_round(run_name: str, round_dir: Path, outputs: dict, manifest: dict,
                  questions: dict[str, str]) -> None:
    """Write manifest.json and the round's Prefect artifacts.

    Cached on `outputs` (the content hashes of what the round produced), so a cached
    re-run keeps the first run's manifest (with its real step timings) and artifacts.
    """
    round_dir = Path(round_dir)
    write_json(round_dir / "manifest.json", manifest)
    r = manifest["round"]
    ann = read_parquet(round_dir / "annotations.parquet")
    create_table_artifact(
        key=artifact_key(run_name, f"round-{r:03d}-selected"),
        table=[{"question_id": a["question_id"], "question": questions[a["question_id"]][:160],
                "status": a["status"], "teacher_tokens": a["prompt_tokens"] + a["completion_tokens"]}
               for a in ann[:MAX_ROWS]],
        description=f"Round {r}: the {len(ann)} questions selected by {manifest['selector']} "
                    f"and annotated with {manifest['annotator']}.",
    )
    create_table_artifact(
        key=artifact_key(run_name, f"round-{r:03d}-revisions"),
        table=[{"question_id": a["question_id"], "status": a["status"],
                "accepted_steps": a["accepted_steps"], "target": a["target"][:400], "error": a["error"]}
               for a in ann[:MAX_ROWS]],
        description=f"Round {r}: teacher annotations (training targets).",
    )
    create_markdown_artifact(
        key=artifact_key(run_name, f"round-{r:03d}-metrics"),
        markdown=metrics_markdown(
            f"Round {r}: {manifest['selector']} + {manifest['annotator']}", manifest, METRICS),
        description=f"Round {r}: metrics, teacher tokens and cost.",
    )
