"""Batch mode (`teacher.mode: batch`, elad_core/teacher/batch.py; issue #15 item 5).

All offline, through litellm's Files + Batch API against the oracle server's batch endpoints
(elad_core/teacher/oracle/batches.py), whose request log counts batch submissions and the
rows it answered. Examples: the first rows of the embedded GSM8K train split.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elad_core.elad.annotators import AnnotationRequest, annotate_batch
from elad_core.elad.gsm8k import load_examples
from elad_core.files import read_parquet
from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import REPLY_FIELDS, TeacherConfig
from elad_core.teacher.journal import ReplyJournal
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import (
    FaultConfig,
    OracleServer,
    read_request_log,
    request_log_stats,
)
from elad_core.teacher.pricing import pricing_client

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("status", "target", "answer", "prompt_tokens", "completion_tokens", "n_requests",
          "accepted_steps")


@pytest.fixture(scope="module")
def examples():
    return load_examples("gsm8k", "train")[:4]


@pytest.fixture(scope="module")
def judge(examples):
    return OracleJudge(examples)


def _requests(examples, annotator: str) -> list[AnnotationRequest]:
    """The examples (CLEAR revises their gold rationale: every step accepted, steps + 1
    turns) plus one question the oracle does not know (a permanent 400: status failed)."""
    explain = annotator != "cot"
    reqs = [AnnotationRequest(e.id, e.question, e.rationale if explain else None,
                              0 if explain else None) for e in examples]
    return reqs + [AnnotationRequest("unknown", "What is the airspeed of a swallow?")]


def _batch_client(api_base, journal: Path | None = None, **kw) -> TeacherClient:
    return TeacherClient("openai/oracle", api_base=api_base, mode="batch", batch_poll_s=0.05,
                         journal=ReplyJournal(journal) if journal else None, **kw)


def _kinds(rows: list[dict], kind: str | None) -> list[dict]:
    return [r for r in rows if r.get("kind") == kind]


def _same(a, b) -> None:
    assert [tuple(getattr(x, f) for f in FIELDS) for x in a] == \
        [tuple(getattr(x, f) for f in FIELDS) for x in b]


# ------------------------------------------------------------------ config and prices
def test_mode_is_not_in_the_reply_key_and_budgets_use_batch_prices():
    sync, batch = TeacherConfig(), TeacherConfig(mode="batch", batch_price_ratio=0.4)
    assert "mode" not in REPLY_FIELDS and "batch_price_ratio" not in REPLY_FIELDS
    assert sync.reply_key("v1") == batch.reply_key("v1")  # the same replies, cached once
    list_price = pricing_client(sync).price_usd(1e6, 1e6)
    assert list_price > 0
    assert pricing_client(batch).price_usd(1e6, 1e6) == pytest.approx(0.4 * list_price)
    client = TeacherClient.from_config(batch, "http://127.0.0.1:1/v1")
    assert (client.mode, client.batch_price_ratio) == ("batch", 0.4)
    assert TeacherClient(settings=client.worker_settings()).mode == "batch"  # workers too


# ------------------------------------------------------------------ (a) same annotations
@pytest.mark.parametrize("annotator", ["cot", "clear"])
def test_batch_mode_gives_the_sync_annotations_at_batch_price(judge, examples, tmp_path,
                                                              annotator):
    from tasks.elad.annotate import annotate_batch_task

    reqs = _requests(examples, annotator)
    key = {"model": "oracle", "max_clear_turns": 16, "test": str(tmp_path)}
    rows, logs = {}, {}
    for mode in ("sync", "batch"):
        cfg = TeacherConfig(mode=mode, batch_poll_s=0.05, retry_delay_s=0.0)
        logs[mode] = tmp_path / f"{mode}.log.jsonl"
        with OracleServer(judge, request_log=logs[mode]) as srv:
            annotate_batch_task.fn(annotator, reqs, key, cfg, srv.api_base, "number",
                                   tmp_path / mode / "annotations.parquet")
        rows[mode] = read_parquet(tmp_path / mode / "annotations.parquet")
    sync, batch = rows["sync"], rows["batch"]
    assert [r["status"] for r in sync] == ["ok"] * len(examples) + ["failed"]
    for f in FIELDS:
        assert [r[f] for r in batch] == [r[f] for r in sync], f
    for s, b in zip(sync, batch, strict=True):
        assert b["cost_usd"] == pytest.approx(0.5 * s["cost_usd"])
    assert sum(r["cost_usd"] for r in batch) > 0
    log = read_request_log(logs["batch"])
    created = _kinds(log, "batch")
    turns = max(r["n_requests"] for r in sync)
    # turn by turn: every dialogue's first turn in the first batch, one batch per turn
    assert len(created) == turns and created[0]["rows"] == len(reqs)
    assert [r["rows"] for r in created] == [sum(r["n_requests"] > t for r in sync)
                                           for t in range(turns)]
    # the unknown question's row failed in the batch (400) and went synchronously: failed
    assert [r["status"] for r in _kinds(log, None)] == [400]
    assert request_log_stats(log)["paid_twice"] == 0


# ------------------------------------------------------------------ (b) kill and resume
_CHILD = """
import os, sys
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from pathlib import Path
from elad_core.elad.annotators import AnnotationRequest, annotate_batch
from elad_core.elad.gsm8k import load_examples
from elad_core.teacher.client import TeacherClient
from elad_core.teacher.journal import ReplyJournal
api_base, journal, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
reqs = [AnnotationRequest(e.id, e.question) for e in load_examples("gsm8k", "train")[:n]]
client = TeacherClient("openai/oracle", api_base=api_base, mode="batch", batch_poll_s=0.2,
                       journal=ReplyJournal(journal))
annotate_batch(client, "cot", reqs)
print("NOT KILLED")
"""


def test_a_killed_task_resumes_its_batch_without_submitting_again(judge, examples, tmp_path):
    log, journal = tmp_path / "log.jsonl", tmp_path / "annotations.journal.jsonl"
    batches = tmp_path / "annotations.journal.batches.jsonl"
    reqs = [AnnotationRequest(e.id, e.question) for e in examples]
    with OracleServer(judge) as srv:
        reference = annotate_batch(TeacherClient("openai/oracle", api_base=srv.api_base),
                                   "cot", reqs)
    with OracleServer(judge, FaultConfig(batch_delay_s=600), log) as srv:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, srv.api_base, str(journal), str(len(reqs))],
            cwd=ROOT, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (batches.exists() and batches.read_bytes().endswith(b"\n")):
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "the child never journaled its batch"
            time.sleep(0.1)
        time.sleep(0.5)  # it is polling now
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        (record,) = [json.loads(x) for x in batches.read_text().splitlines()]
        assert len(record["keys"]) == len(reqs) and record["input_file_id"]
        assert not journal.exists() or journal.read_text() == ""  # nothing answered yet
        srv.app.state.batch_delay_s = 0.0  # the provider finishes the batch meanwhile
        client = _batch_client(srv.api_base, journal)
        resumed = annotate_batch(client, "cot", reqs)
    log_rows = read_request_log(log)
    assert [r["batch_id"] for r in _kinds(log_rows, "batch")] == [record["batch_id"]]
    assert _kinds(log_rows, None) == []  # and nothing went synchronously
    assert client.requests_sent == 0  # the rerun submitted nothing
    assert request_log_stats(log_rows)["completions"] == len(reqs)
    _same(resumed, reference)
    final = json.loads(batches.read_text().splitlines()[-1])
    assert final == {"batch_id": record["batch_id"], "final": "completed"}


# ------------------------------------------------------------------ (c) fallback to sync
@pytest.mark.parametrize("end,row_status", [("completed", 500), ("expired", "expired")])
def test_failed_or_expired_rows_fall_back_to_sync(judge, examples, tmp_path, end, row_status):
    reqs = [AnnotationRequest(e.id, e.question) for e in examples]
    with OracleServer(judge) as srv:
        reference = annotate_batch(TeacherClient("openai/oracle", api_base=srv.api_base),
                                   "cot", reqs)
    log = tmp_path / "log.jsonl"
    faults = FaultConfig(batch_row_fail_rate=0.5, batch_end=end, seed=3)
    with OracleServer(judge, faults, log) as srv:
        got = annotate_batch(_batch_client(srv.api_base, tmp_path / "j.jsonl"), "cot", reqs)
    _same(got, reference)
    rows = read_request_log(log)
    failed = {r["messages_sha"] for r in _kinds(rows, "batch_row") if r["status"] == row_status}
    assert 0 < len(failed) < len(reqs)  # the seed makes some rows fail, not all
    sync = _kinds(rows, None)
    assert {r["messages_sha"] for r in sync} == failed and len(sync) == len(failed)
    assert request_log_stats(rows)["paid_twice"] == 0
    n_full = 0
    for a, ref in zip(got, reference, strict=True):  # fallback rows: list price
        full = a.cost_usd == pytest.approx(ref.cost_usd)
        n_full += full
        assert full or a.cost_usd == pytest.approx(0.5 * ref.cost_usd)
    assert n_full == len(failed)


def test_a_failed_batch_falls_back_to_sync(judge, examples, tmp_path):
    reqs = [AnnotationRequest(e.id, e.question) for e in examples]
    log = tmp_path / "log.jsonl"
    with OracleServer(judge, FaultConfig(batch_end="failed"), log) as srv:
        got = annotate_batch(_batch_client(srv.api_base, tmp_path / "j.jsonl"), "cot", reqs)
        reference = annotate_batch(TeacherClient("openai/oracle", api_base=srv.api_base),
                                   "cot", reqs)
    _same(got, reference)
    assert [a.cost_usd for a in got] == [a.cost_usd for a in reference]  # paid at list price
    rows = read_request_log(log)
    assert len(_kinds(rows, "batch")) == 1 and len(_kinds(rows, None)) == 2 * len(reqs)


def test_a_batch_past_max_wait_is_cancelled_and_sent_sync_once(judge, examples, tmp_path):
    reqs = [AnnotationRequest(e.id, e.question) for e in examples]
    log, journal = tmp_path / "log.jsonl", tmp_path / "j.jsonl"
    with OracleServer(judge, FaultConfig(batch_delay_s=600), log) as srv:
        t0 = time.monotonic()
        got = annotate_batch(_batch_client(srv.api_base, journal, batch_max_wait_s=0.5),
                             "cot", reqs)
        assert time.monotonic() - t0 < 30
        again = _batch_client(srv.api_base, journal, batch_max_wait_s=0.5)
        assert [a.target for a in annotate_batch(again, "cot", reqs)] == [a.target for a in got]
    assert all(a.status == "ok" for a in got)
    rows = read_request_log(log)
    assert len(_kinds(rows, "batch")) == 1 and len(_kinds(rows, "batch_cancel")) == 1
    assert len(_kinds(rows, None)) == len(reqs)  # each request once, synchronously
    assert again.requests_sent == 0 and again.replayed == len(reqs)  # the rerun: journal
    batches = [json.loads(x) for x in (tmp_path / "j.batches.jsonl").read_text().splitlines()]
    assert batches[-1]["final"] == "abandoned"


def test_a_journaled_batch_the_provider_does_not_know_goes_sync(judge, examples, tmp_path):
    """A restarted run gets a fresh oracle, which never heard of the journaled batch (404):
    its requests go synchronously at once instead of being polled for batch_max_wait_s."""
    from elad_core.elad import prompts
    from elad_core.teacher.batch import BatchJournal
    from elad_core.teacher.journal import request_key

    reqs = [AnnotationRequest(e.id, e.question) for e in examples]
    keys = [request_key("openai/oracle", prompts.cot_messages(r.question), 0.0, 512)
            for r in reqs]
    BatchJournal(tmp_path / "j.batches.jsonl").submitted("batch_gone", "file-gone", keys)
    log = tmp_path / "log.jsonl"
    with OracleServer(judge, request_log=log) as srv:
        t0 = time.monotonic()
        got = annotate_batch(_batch_client(srv.api_base, tmp_path / "j.jsonl"), "cot", reqs)
        assert time.monotonic() - t0 < 30
    assert [a.status for a in got] == ["ok"] * len(reqs)
    rows = read_request_log(log)
    assert _kinds(rows, "batch") == [] and len(_kinds(rows, None)) == len(reqs)
    assert BatchJournal(tmp_path / "j.batches.jsonl").final == {"batch_gone": "lost"}


def test_teacher_mode_flag_reaches_the_config(tmp_path, monkeypatch):
    """`elad run --teacher-mode batch`: listed with its choices, lands on teacher.mode."""
    from typer.testing import CliRunner

    import elad_core.elad.preflight
    from elad_core.errors import ConfigError
    from flows.cli import app

    runner = CliRunner()
    assert "--teacher-mode <sync|batch>" in runner.invoke(app, ["run", "--help"],
                                                          terminal_width=200).output
    seen = {}

    def stop(cfg, notes=None):
        seen["cfg"] = cfg
        raise ConfigError("stopped before the flow")

    monkeypatch.setattr(elad_core.elad.preflight, "preflight", stop)
    res = runner.invoke(app, ["run", "--runs-dir", str(tmp_path), "--teacher-mode", "batch"])
    assert res.exit_code == 2 and "stopped before the flow" in res.output, res.output
    assert seen["cfg"].teacher.mode == "batch"
    assert runner.invoke(app, ["run", "--teacher-mode", "bulk"]).exit_code == 2
