"""SIGKILL during round 1's student sampling and during its training, then resume (issue #4).

Each run is a real `elad run` subprocess against an oracle server this test owns, so the
request log outlives the killed process: the resumed run must complete with no teacher
completion delivered twice, and its results must equal those of an uninterrupted run.
(SIGKILL during teacher annotation: tests/flows/test_resume.py.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config
from test_resume import _start

from elad_core.elad.gsm8k import load_examples
from elad_core.files import read_parquet
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import (
    OracleServer,
    read_request_log,
    request_log_stats,
)

pytestmark = pytest.mark.slow
STEPS = 20  # training steps per round


def _cfg(tmp: Path, name: str, api_base: str) -> Path:
    cfg = tiny_config(tmp, run_name=name)
    # 4 sampling shards of 4 questions and 20 training steps: each step lasts long enough for
    # the kill to land inside it; a selector without EGSS probes keeps the round short
    cfg["student"]["shard_questions"] = 4
    cfg["selection"]["selector"] = "disagreement"
    cfg["train"]["steps"] = STEPS
    cfg["teacher"]["api_base"] = api_base
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """One oracle server per test module; each run keeps its own request log."""
    tmp = tmp_path_factory.mktemp("crash")
    servers = {}
    judge = OracleJudge(load_examples("gsm8k", "train"))

    def server(name: str) -> OracleServer:
        servers[name] = OracleServer(judge, request_log=tmp / f"{name}.jsonl").start()
        return servers[name]

    yield tmp, server
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def reference(oracle):
    tmp, server = oracle
    assert _start(_cfg(tmp, "reference", server("reference").api_base), tmp).wait(600) == 0
    return tmp / "runs" / "reference"


def _start_logged(cfg: Path, tmp: Path, stderr: Path) -> subprocess.Popen:
    """`elad run` with its stderr (where training reports its steps) in a file."""
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect_home")}
    elad = Path(sys.executable).with_name("elad")
    return subprocess.Popen([str(elad), "run", "-c", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr.open("wb"))


def _kill_when(proc, ready, what: str) -> None:
    deadline = time.time() + 300
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline, f"{what} never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assert_same_results(run: Path, reference: Path) -> None:
    a = json.loads((run / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    for ra, rb in zip(a["rounds"], b["rounds"], strict=True):
        for key in ("selected", "teacher_tokens", "cost_usd", "accuracy", "train_loss",
                    "eval_loss", "annotation_statuses"):
            assert ra[key] == rb[key], key
    for rel in ("round_001/samples.parquet", "round_001/scores.parquet",
                "round_001/selected.parquet", "round_001/annotations.parquet"):
        assert read_parquet(run / rel) == read_parquet(reference / rel), rel
    weights = "round_001/model/model.safetensors"
    assert (run / weights).read_bytes() == (reference / weights).read_bytes()


def _resume_and_check(tmp: Path, name: str, cfg: Path, reference: Path) -> None:
    assert _start(cfg, tmp).wait(timeout=600) == 0
    stats = request_log_stats(read_request_log(tmp / f"{name}.jsonl"))
    assert stats["paid_twice"] == 0  # no teacher completion delivered twice
    _assert_same_results(tmp / "runs" / name, reference)


def test_sigkill_during_sampling_then_resume(oracle, reference):
    tmp, server = oracle
    cfg = _cfg(tmp, "kill-sampling", server("kill-sampling").api_base)
    r1 = tmp / "runs" / "kill-sampling" / "round_001"
    proc = _start(cfg, tmp)
    _kill_when(proc, lambda: (r1 / "shards" / "samples_0000.parquet").exists(), "sampling")
    assert not (r1 / "samples.parquet").exists(), "the kill came after sampling had finished"
    _resume_and_check(tmp, "kill-sampling", cfg, reference)


def test_sigkill_during_training_then_resume(oracle, reference):
    tmp, server = oracle
    cfg = _cfg(tmp, "kill-training", server("kill-training").api_base)
    r1 = tmp / "runs" / "kill-training" / "round_001"
    stderr = tmp / "kill-training.stderr"
    proc = _start_logged(cfg, tmp, stderr)
    mid_training = re.compile(rf"train \(full\):\s+\d+%\|[^|]*\| ([1-9]|1\d)/{STEPS} ")

    def training_round_1() -> bool:  # round 1's annotations are merged and a step is done
        if not (r1 / "annotations.parquet").exists():
            return False
        text = stderr.read_text(errors="replace")
        return len(mid_training.findall(text.split("merge_shards")[-1])) > 0

    _kill_when(proc, training_round_1, "round 1's training")
    assert not (r1 / "model").exists(), "the kill came after training had finished"
    _resume_and_check(tmp, "kill-training", cfg, reference)
