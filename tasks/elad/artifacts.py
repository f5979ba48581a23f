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
           "cost_usd", "accuracy", "parse_rate", "flexible_accuracy", "flexible_parse_rate", "train_loss", "eval_loss", "wall_s")
CURVE = ("round", "selector", "annotator", "selected", "cumulative_teacher_tokens", "accuracy",
         "flexible_accuracy", "train_loss", "eval_loss")


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
    if manifest.get("selection_report"):
        create_markdown_artifact(
            key=artifact_key(run_name, f"round-{r:03d}-selection"),
            markdown=selection_markdown(manifest),
            description=f"Round {r}: is selection paying? Selected vs random control questions.")
    create_markdown_artifact(
        key=artifact_key(run_name, f"round-{r:03d}-metrics"),
        markdown=metrics_markdown(
            f"Round {r}: {manifest['selector']} + {manifest['annotator']}", manifest, METRICS),
        description=f"Round {r}: metrics, teacher tokens and cost.",
    )


def selection_markdown(m: dict) -> str:
    """The selection report of round manifest `m` as markdown (elad_core.elad.selection_report)."""
    cols = ("questions", "student_agrees_teacher", "teacher_usable_rate",
            "teacher_tokens_per_question")
    lines = [f"# Round {m['round']}: {m['selector']} selection", "",
             "| questions | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(fig.get(c)) for c in cols) + " |"
              for name, fig in m["selection_report"].items()]
    lines += ["", f"Accuracy gain per 1k teacher tokens this round: "
                  f"{m.get('accuracy_gain_per_1k_tokens')}",
              "", "student_agrees_teacher: share of usable replies whose answer equals the "
                  "student's majority answer before training (lower: the selector found what "
                  "the student gets wrong)."]
    return "\n".join(lines)
