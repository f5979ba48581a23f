"""EvoKD Prefect tasks (docs/design.md §2.5, §3): data, one teacher call, student train /
predict / evaluate, round artifacts. Each wraps one `elad_core.evokd` step in a few lines.

Cached on content (`CONTENT_CACHE`: inputs carry file hashes, weight hashes, the config
slice and the prompt version), results persisted under the run folder (`in_run`). The
teacher task retries transient failures only (429, 5xx, timeouts) with exponential backoff
+ jitter, waits out `Retry-After`, and journals every reply paid for, exactly as
`tasks.teacher` does; a permanent failure is returned as status "failed" (the flow stops
the run there), a rejected key raises.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.concurrency.sync import concurrency
from prefect.tasks import exponential_backoff

from elad_core.config import TeacherConfig
from elad_core.errors import (
    PermanentTeacherError,
    TeacherAuthError,
    TransientTeacherError,
)
from elad_core.evokd import data as evokd_data
from elad_core.evokd.metrics import task_metrics
from elad_core.evokd.rounds import chat, feedback_rows
from elad_core.files import hash_dir, hash_file, read_parquet, write_json, write_parquet
from elad_core.teacher_client import TeacherClient
from elad_core.teacher_journal import ReplyJournal
from tasks import CONTENT_CACHE
from tasks.artifacts import MAX_ROWS, artifact_key
from tasks.teacher import (
    MAX_RETRY_AFTER_S,
    REPLAYED,
    REQUESTS_SENT,
    _transient,
    resolve_api_key,
)
from tasks.teacher_limits import rate_limiter


def read_rows(ref: dict) -> list[dict]:
    """Rows of a parquet file a task returned as {"path", "sha"}."""
    return read_parquet(Path(ref["path"]))


@task(cache_policy=CONTENT_CACHE)
def prepare_evokd_data(data_cfg: dict, sources: dict, seed: int, run_dir: Path) -> dict:
    """Write data/{seeds,eval,reserve}.parquet; returns their paths + hashes, the label set
    and the kind. sources: content hashes of the split files (the cache key)."""
    p = evokd_data.prepare_task(
        data_cfg["task"], data_cfg["dataset"], data_cfg["train_split"], data_cfg["test_split"],
        data_cfg["fields"], data_cfg["labels"], data_cfg["k_shot"], data_cfg["eval_size"],
        data_cfg["reserve_size"], seed)
    out: dict = {"labels": p.labels, "kind": p.kind}
    for name, rows in (("seeds", p.seeds), ("eval", p.eval), ("reserve", p.reserve)):
        path = Path(run_dir) / "data" / f"{name}.parquet"
        write_parquet(path, [{"id": e.id, "text": e.text, "label": e.label, "source": e.source}
                             for e in rows])
        out[name] = {"path": str(path), "sha": hash_file(path), "rows": len(rows)}
    return out


@task(cache_policy=CONTENT_CACHE - "api_base" - "teacher_cfg", retry_condition_fn=_transient,
      retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=1), retry_jitter_factor=0.5)
def teacher_call(step: str, messages: list[dict], teacher_key: dict, teacher_cfg: dict,
                 api_base: str | None, out_path: Path) -> dict:
    """One teacher call (analyse / generate / static / label) -> {"status" ok|failed, "text",
    "prompt_tokens", "completion_tokens", "teacher_tokens", "cost_usd", "error"}, also
    written to out_path (JSON). teacher_key: the config slice + prompt version that decide
    the reply (the cache key); teacher_cfg: the whole TeacherConfig (endpoint, timeouts).
    Raises TransientTeacherError (retried by Prefect) and TeacherAuthError."""
    cfg = TeacherConfig(**teacher_cfg)
    out_path = Path(out_path)
    client = TeacherClient.from_config(
        cfg, api_base, api_key=resolve_api_key(cfg), throttle=rate_limiter(cfg),
        journal=ReplyJournal(out_path.with_name(f"{out_path.stem}.journal.jsonl")))
    result = {"step": step, "status": "ok", "text": "", "prompt_tokens": 0,
              "completion_tokens": 0, "cost_usd": 0.0, "error": ""}
    try:
        with concurrency(cfg.concurrency_limit or []):
            reply = chat(client, messages)
        result.update(text=reply.text, prompt_tokens=reply.prompt_tokens,
                      completion_tokens=reply.completion_tokens, cost_usd=reply.cost_usd)
    except TransientTeacherError as exc:
        if exc.retry_after_s:
            time.sleep(min(exc.retry_after_s, MAX_RETRY_AFTER_S))
        raise
    except TeacherAuthError:
        raise
    except PermanentTeacherError as exc:
        result.update(status="failed", error=str(exc))
    finally:
        REQUESTS_SENT.add(client.requests_sent)
        REPLAYED.add(client.replayed)
    result["teacher_tokens"] = result["prompt_tokens"] + result["completion_tokens"]
    write_json(out_path, {**result, "messages": messages})
    return result


@task(cache_policy=CONTENT_CACHE)
def write_batch(rows: list[dict], out_path: Path) -> dict:
    """A round's batch rows -> batch.parquet; returns path, hash and counts per status."""
    write_parquet(Path(out_path), rows)
    return {"path": str(out_path), "sha": hash_file(out_path),
            "ok": sum(r["status"] == "ok" for r in rows), "rows": len(rows)}


@task(cache_policy=CONTENT_CACHE)
def train_evokd(student: dict, kind: str, labels: list[str], init: dict, examples: list[dict],
                train_cfg: dict, steps: int, seed: int, out_dir: Path) -> dict:
    """Continue training from `init` ({} = base) on (text, label) rows (docs/design.md §2.5 step 5)."""
    from elad_core.evokd.config import EvoKDTrainConfig
    from elad_core.evokd.student import train_student

    res = train_student(student["base"], kind, labels, Path(init["path"]) if init else None,
                        [(e["text"], e["label"]) for e in examples], EvoKDTrainConfig(**train_cfg),
                        student["mode"], steps, Path(out_dir), seed, student["device"],
                        student["max_length"], student["bf16"], student["num_threads"])
    return {"path": str(out_dir), "sha": hash_dir(Path(out_dir)), "losses": res.losses,
            "n_examples": res.n_examples, "wall_s": res.wall_s, "precision": res.precision}


@task(cache_policy=CONTENT_CACHE)
def feedback_on_batch(student: dict, kind: str, labels: list[str], weights: dict, batch: dict,
                      out_path: Path) -> dict:
    """The student's predictions on a batch's labelled rows -> feedback.parquet (step 1)."""
    from elad_core.evokd.student import predict

    rows = [r for r in read_rows(batch) if r["status"] == "ok"]
    preds = predict(student["base"], kind, labels, Path(weights["path"]) if weights else None,
                    [r["text"] for r in rows], student["max_length"], 64, student["device"],
                    student["bf16"], student["num_threads"])
    fb = feedback_rows(rows, preds)
    write_parquet(Path(out_path), fb)
    return {"path": str(out_path), "sha": hash_file(out_path), "n": len(fb),
            "correct": sum(f["correct"] for f in fb)}


@task(cache_policy=CONTENT_CACHE)
def evaluate_evokd(student: dict, kind: str, labels: list[str], weights: dict, eval_ref: dict,
                   batch_size: int, out_path: Path) -> dict:
    """Metrics of the student on the fixed eval subset -> eval.json (with predictions)."""
    from elad_core.evokd.student import predict

    t0 = time.perf_counter()
    rows = read_rows(eval_ref)
    preds = predict(student["base"], kind, labels, Path(weights["path"]) if weights else None,
                    [r["text"] for r in rows], student["max_length"], batch_size,
                    student["device"], student["bf16"], student["num_threads"])
    metrics = {**task_metrics(kind, [r["label"] for r in rows], preds, labels),
               "wall_s": time.perf_counter() - t0}
    write_json(Path(out_path), {**metrics, "predictions": [{"id": r["id"], "prediction": p}
                                                            for r, p in zip(rows, preds, strict=True)]})
    return metrics


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
                             markdown=_metrics_markdown(manifest),
                             description=f"Round {r}: metrics and teacher tokens.")


def publish_evokd_run(run_name: str, run_dir: Path, summary: dict) -> None:
    """summary.json and the F1-against-teacher-tokens curve artifact (in the flow run)."""
    write_json(Path(run_dir) / "summary.json", summary)
    create_table_artifact(
        key=artifact_key(run_name, "f1-curve"),
        table=[{k: row.get(k) for k in ("round", "method", "new_examples",
                                        "cumulative_teacher_tokens", "f1", "accuracy",
                                        "feedback_accuracy", "train_loss")}
               for row in summary["rounds"]],
        description="EvoKD student: test F1 against cumulative teacher tokens, one row per round.")


def _metrics_markdown(m: dict) -> str:
    lines = [f"# Round {m['round']}: {m['method']}", "", "| metric | value |", "|---|---|"]
    for key in ("new_examples", "batch_statuses", "teacher_tokens", "cost_usd", "feedback_accuracy",
                "f1", "accuracy", "train_examples", "train_loss", "wall_s"):
        lines.append(f"| {key} | {m.get(key)} |")
    if m.get("analysis"):
        lines += ["", "## Teacher's analysis", "", m["analysis"]]
    lines += ["", "| step | wall s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in m["step_wall_s"].items()]
    return "\n".join(lines)
