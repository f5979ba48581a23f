"""SIGKILL in the middle of round 1's teacher annotation, then resume (docs/design.md §3).

The run is a real `elad run` subprocess against an oracle server this test owns, so the
oracle's request log outlives the killed process and counts exactly what was asked.
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
import yaml
from conftest import tiny_config

from elad_core.elad.gsm8k import load_examples
from elad_core.files import read_parquet
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import FaultConfig, OracleServer, request_log_stats

pytestmark = pytest.mark.slow
BATCH = 2  # questions per teacher batch task


def _log(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _start(cfg_path: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect_home")}
    elad = Path(sys.executable).with_name("elad")
    return subprocess.Popen([str(elad), "run", "-c", str(cfg_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _write_cfg(tmp: Path, name: str, api_base: str) -> Path:
    cfg = tiny_config(tmp, run_name=name)
    cfg["teacher"].update(batch_size=BATCH, max_concurrency=1, api_base=api_base)
    cfg["selection"]["per_round"] = 8
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _clear_requests(log: list[dict]) -> list[dict]:
    return [r for r in log if r["mode"] == "clear" and r["status"] == 200]


def test_sigkill_during_annotation_then_resume(tmp_path):
    examples = load_examples("gsm8k", "train")
    logs = {n: tmp_path / f"{n}.jsonl" for n in ("killed", "reference")}
    # 0.3 s per request, one at a time: round 1's CLEAR dialogues take a few seconds, and
    # the kill lands while a request is in flight (a reply being received at that very
    # instant, before it is journaled, would be paid again: a window of milliseconds)
    servers = {n: OracleServer(OracleJudge(examples), FaultConfig(latency_s=0.3), log)
               for n, log in logs.items()}
    for s in servers.values():
        s.start()
    try:
        killed_cfg = _write_cfg(tmp_path, "killed", servers["killed"].api_base)
        proc = _start(killed_cfg, tmp_path)
        deadline = time.time() + 300
        shards = tmp_path / "runs" / "killed" / "round_001" / "shards"
        # mid round-1 annotation: 6 replies journaled, the next request in flight
        while sum(len(f.read_bytes().splitlines()) for f in shards.glob("*.journal.jsonl")) < 6:
            assert proc.poll() is None, "run ended before round 1's annotation"
            assert time.time() < deadline, "round 1's annotation never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = _clear_requests(_log(logs["killed"]))
        finished = {r["question_id"] for f in shards.glob("annotations_*.parquet")
                    for r in read_parquet(f)}
        assert finished, "no batch had finished before the kill"

        assert _start(killed_cfg, tmp_path).wait(timeout=600) == 0
        after = _clear_requests(_log(logs["killed"]))[len(before):]
        # the batches that had finished are not requested again
        assert not finished & {r["question_id"] for r in after}
        # only the batch in flight at the kill was asked again
        again = {r["question_id"] for r in before} & {r["question_id"] for r in after}
        assert len(again) <= BATCH
        # ... and even its dialogues paid no turn twice: journaled replies were replayed, the
        # request in flight at the kill was dropped by the server (client gone), not delivered
        assert request_log_stats(_log(logs["killed"]))["paid_twice"] == 0

        ref_cfg = _write_cfg(tmp_path, "reference", servers["reference"].api_base)
        assert _start(ref_cfg, tmp_path).wait(timeout=600) == 0
    finally:
        for s in servers.values():
            s.stop()

    runs = tmp_path / "runs"
    a = json.loads((runs / "killed" / "summary.json").read_text())
    b = json.loads((runs / "reference" / "summary.json").read_text())
    assert a["teacher_requests_sent"] < b["teacher_requests_sent"]  # the resume sent fewer
    for ra, rb in zip(a["rounds"], b["rounds"], strict=True):
        for key in ("selected", "teacher_tokens", "accuracy", "train_loss", "annotation_statuses"):
            assert ra[key] == rb[key], key
    for rd in ("round_000", "round_001"):
        for f in ("selected.parquet", "annotations.parquet"):
            rows_a = read_parquet(runs / "killed" / rd / f)
            rows_b = read_parquet(runs / "reference" / rd / f)
            assert [r.get("target", r["question_id"]) for r in rows_a] == \
                   [r.get("target", r["question_id"]) for r in rows_b]
