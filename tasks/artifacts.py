"""Round artifacts: manifest.json on disk and keyed Prefect artifacts (docs/design.md §2 step 8, §3).

Artifacts per round: the selected-question table, the teacher's revisions, and a metrics
markdown; per run: the accuracy / token curve table. Keys are stable per run and round, so
the Prefect UI shows each key's history across invocations.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from elad_core.files import read_parquet, write_json
from tasks import CONTENT_CACHE

MAX_ROWS = 200  # rows shown per table artifact; the parquet files hold everything


def artifact_key(run_name: str, suffix: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{run_name}-{suffix}".lower()).strip("-")


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
        markdown=_metrics_markdown(manifest),
        description=f"Round {r}: metrics, teacher tokens and cost.",
    )


def publish_run(run_name: str, run_dir: Path, summary: dict) -> None:
    """Write this invocation's summary.json and the accuracy-curve artifact (in the flow run)."""
    write_json(Path(run_dir) / "summary.json", summary)
    create_table_artifact(
        key=artifact_key(run_name, "accuracy-curve"),
        table=[{k: row[k] for k in ("round", "selector", "annotator", "selected",
                                    "cumulative_teacher_tokens", "accuracy", "train_loss", "eval_loss")}
               for row in summary["rounds"]],
        description="Student accuracy against cumulative teacher tokens, one row per round.",
    )


def _metrics_markdown(m: dict) -> str:
    lines = [f"# Round {m['round']}: {m['selector']} + {m['annotator']}", "",
             "| metric | value |", "|---|---|"]
    for key in ("selected", "annotations_ok", "train_examples", "teacher_tokens", "cost_usd",
                "accuracy", "parse_rate", "train_loss", "eval_loss", "wall_s"):
        lines.append(f"| {key} | {m[key]} |")
    lines += ["", "| step | wall s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in m["step_wall_s"].items()]
    return "\n".join(lines)
