"""EvoKD's round records and the run's stop rule (docs/design.md §2.5, §2.6): what a round
writes to its manifest.json and summary.json row, why no further round runs, and the next
round's estimated teacher spend. Pure: no Prefect, no I/O."""

from __future__ import annotations

from collections.abc import Callable

from elad_core.budget import Budget, Usage, measured_mean, with_cumulative_tokens

# teacher calls of one round per method: analyse + generate + label; generate + label; label
TEACHER_CALLS = {"evokd": 3, "static": 2, "random": 1, "kshot": 0}
SUMMARY_FIELDS = ("round", "method", "new_examples", "batch_statuses", "teacher_calls",
                  "teacher_tokens", "cost_usd", "generate_status", "labels_parsed",
                  "feedback_accuracy", "train_examples", "train_steps", "train_loss", "f1",
                  "accuracy", "wall_s")


def new_record(round_index: int, method: str, prompt_version: str) -> dict:
    """A round's record before its steps fill it in (teacher calls and tokens add up)."""
    return {"round": round_index, "method": method, "teacher_calls": 0, "teacher_tokens": 0,
            "cost_usd": 0.0, "analysis": None, "generate_status": None, "labels_parsed": None,
            "train_loss": None, "train_examples": 0, "train_steps": 0, "failed": None,
            "prompt_version": prompt_version}


def add_teacher_call(rec: dict, step: str, result: dict) -> bool:
    """Book one teacher call's tokens and cost on `rec`; False (and `rec["failed"]` says why)
    when the call failed permanently."""
    rec["teacher_calls"] += 1
    rec["teacher_tokens"] += result["teacher_tokens"]
    rec["cost_usd"] = round(rec["cost_usd"] + result["cost_usd"], 8)
    if result["status"] != "ok":
        rec["failed"] = f"teacher {step} call failed: {result['error']}"
        return False
    return True


def add_training(rec: dict, trained: dict) -> None:
    """Book a train task's result (losses, n_examples, precision) on `rec`."""
    rec.update(train_loss=trained["losses"][-1], train_examples=trained["n_examples"],
               train_steps=len(trained["losses"]), precision=trained.get("precision"))


def close_record(rec: dict, batch: dict, batch_rows: list[dict], feedback: dict,
                 weights: dict) -> dict:
    """`rec` with the round's batch (ref and rows), the student's feedback accuracy on it
    (None when the batch had no usable row) and the weights after the round."""
    statuses = sorted({x["status"] for x in batch_rows})
    rec.update(new_examples=batch["ok"], batch_ref=batch, weights=dict(weights),
               batch_statuses={s: sum(x["status"] == s for x in batch_rows) for s in statuses},
               feedback_accuracy=feedback["correct"] / feedback["n"] if feedback["n"] else None)
    return rec


def measured_round_usage(records: list[dict]) -> Usage | None:
    """The mean teacher spend of the teacher rounds so far (None before any)."""
    done = [x for x in records if x["teacher_calls"]]
    return measured_mean(done, len(done)) if done else None


def stop_reason(records: list[dict], next_round: int, rounds: int, method: str,
                budget: Budget, estimate: Callable[[], tuple[Usage, str]]) -> str | None:
    """Why no round `next_round` runs (a failure, kshot, rounds done, a budget), or None.

    estimate: () -> the next round's (usage, basis); called only when the rest allows it."""
    if records and records[-1]["failed"]:
        return f"stopped in round {next_round - 1}: {records[-1]['failed']}"
    if method == "kshot":
        return "method kshot: the seeds only, no teacher round"
    if next_round >= rounds:
        return f"finished {rounds} rounds"
    spent = Usage(sum(x["teacher_tokens"] for x in records),
                  sum(x["cost_usd"] for x in records))
    est, basis = estimate()
    why = budget.refusal(spent, est)
    if why is None:
        return None
    return (f"stopped before round {next_round}: budget: the round would spend an "
            f"estimated {est.teacher_tokens:,.0f} teacher tokens / ${est.cost_usd:.4f} "
            f"({basis}); {why}")


def a_priori_round_usage(method: str, first_request_prompt_tokens: int,
                         completion_tokens: int, price_usd) -> tuple[Usage, str]:
    """A round's spend before any was measured: TEACHER_CALLS[method] calls, each of the
    prompt tokens of the method's first request plus `completion_tokens`."""
    calls = TEACHER_CALLS[method]
    prompt = calls * first_request_prompt_tokens
    completion = calls * completion_tokens
    return (Usage(prompt + completion, price_usd(prompt, completion)),
            f"a priori: {calls} call(s) of ~{prompt // max(1, calls)} prompt + "
            f"{completion_tokens} completion tokens")


def summary_rows(records: list[dict]) -> list[dict]:
    """The rounds' rows of summary.json: SUMMARY_FIELDS and the cumulative teacher tokens."""
    return with_cumulative_tokens([{k: rec.get(k) for k in SUMMARY_FIELDS} for rec in records])
