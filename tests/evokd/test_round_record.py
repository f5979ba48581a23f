"""EvoKD's round records, stop rule and estimates (elad_core.evokd.round_record)."""

from __future__ import annotations

from elad_core.budget import Budget, Usage
from elad_core.evokd.round_record import (
    EvoKDRound,
    a_priori_round_usage,
    measured_round_usage,
    stop_reason,
    summary_rows,
)
from elad_core.evokd.state import BatchRef, FeedbackRef, TrainedRef
from elad_core.refs import FileRef


def _rec(r: int, tokens: int, cost: float, calls: int = 3) -> EvoKDRound:
    return EvoKDRound(round=r, method="evokd", prompt_version="v1", teacher_tokens=tokens,
                      cost_usd=cost, teacher_calls=calls)


def test_a_failed_call_is_booked_and_stops_the_run():
    rec = EvoKDRound(round=1, method="evokd", prompt_version="v1")
    assert rec.add_teacher_call("analyse", {"status": "ok", "teacher_tokens": 30,
                                            "cost_usd": 0.001, "error": ""})
    assert not rec.add_teacher_call("generate", {"status": "failed", "teacher_tokens": 0,
                                                 "cost_usd": 0.0, "error": "HTTP 400"})
    assert rec.teacher_calls == 2 and rec.teacher_tokens == 30
    assert rec.failed == "teacher generate call failed: HTTP 400"
    why = stop_reason([rec], 2, 5, "evokd", Budget(), lambda: (Usage(), "x"))
    assert why == "stopped in round 1: teacher generate call failed: HTTP 400"


def test_stop_rule_rounds_kshot_and_budget():
    never = lambda: (_ for _ in ()).throw(AssertionError("estimate not needed"))  # noqa: E731
    records = [_rec(0, 0, 0.0, calls=0), _rec(1, 900, 0.09)]
    assert stop_reason(records, 2, 2, "evokd", Budget(), never) == "finished 2 rounds"
    assert stop_reason(records, 1, 5, "kshot", Budget(), never).startswith("method kshot")
    est = (Usage(200, 0.02), "measured: mean of 1 teacher round(s)")
    assert stop_reason(records, 2, 5, "evokd", Budget(max_teacher_tokens=2000), lambda: est) is None
    why = stop_reason(records, 2, 5, "evokd", Budget(max_teacher_tokens=1000), lambda: est)
    assert why.startswith("stopped before round 2: budget: the round would spend an estimated "
                          "200 teacher tokens") and "max_teacher_tokens=1000" in why


def test_measured_usage_is_the_mean_of_teacher_rounds_only():
    assert measured_round_usage([_rec(0, 0, 0.0, calls=0)]) is None
    got = measured_round_usage([_rec(0, 0, 0.0, calls=0), _rec(1, 100, 0.1), _rec(2, 300, 0.3)])
    assert got.teacher_tokens == 200 and abs(got.cost_usd - 0.2) < 1e-12


def test_a_priori_usage_counts_each_call():
    usage, basis = a_priori_round_usage("static", 120, 50, lambda p, c: p * 1e-6 + c * 2e-6)
    assert usage.teacher_tokens == 2 * 120 + 2 * 50
    assert abs(usage.cost_usd - (240e-6 + 100 * 2e-6)) < 1e-12
    assert basis == "a priori: 2 call(s) of ~120 prompt + 50 completion tokens"


def test_close_record_and_summary_rows():
    rec = _rec(1, 100, 0.1)
    rows = [{"status": "ok"}, {"status": "ok"}, {"status": "duplicate"}]
    rec.close(BatchRef(path="b", sha="s", ok=2, rows=3), rows, FeedbackRef(path="f", sha="g",
              n=2, correct=1), FileRef(path="w", sha="t"))
    assert rec.batch_statuses == {"duplicate": 1, "ok": 2} and rec.feedback_accuracy == 0.5
    assert rec.weights == {"path": "w", "sha": "t"} and rec.batch_ref["ok"] == 2
    empty = _rec(2, 50, 0.0).close(BatchRef(path="b", sha="s", ok=0, rows=0), [],
                                   FeedbackRef(path="f", sha="g", n=0, correct=0), None)
    assert empty.feedback_accuracy is None and empty.weights == {}
    out = summary_rows([_rec(0, 0, 0.0), rec, empty])
    assert [r["cumulative_teacher_tokens"] for r in out] == [0, 100, 150]
    assert "batch_ref" not in out[1] and out[1]["new_examples"] == 2


def test_the_manifest_leaves_out_eval_and_precision_until_trained():
    rec = _rec(1, 100, 0.1)
    rec.eval = {"f1": 0.5}
    assert "eval" not in rec.manifest() and "precision" not in rec.manifest()
    rec.add_training(TrainedRef(path="w", sha="t", losses=[0.9, 0.4], n_examples=6, wall_s=1.0,
                                precision="fp32"))
    manifest = rec.manifest()
    assert (manifest["train_loss"], manifest["train_steps"], manifest["precision"]) == \
        (0.4, 2, "fp32")
    assert list(manifest)[:3] == ["round", "method", "teacher_calls"]
