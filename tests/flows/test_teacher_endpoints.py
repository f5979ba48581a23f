"""`elad run` against teachers that do not answer in time, or at all (issue #22): a run whose
teacher batch has spent its retries ends with one line naming the endpoint, the cause and the
setting to change (no traceback, exit 2); the same command again pays nothing already received;
a server slower than a fixed timeout completes under the default timeout, which scales with the
request's max_tokens.

A slow server is the oracle test double with injected latency and hangs, against a small
`teacher.timeout_base_s` (the fixed part of the scaled timeout; 60 s by default), so the test
takes seconds, not minutes.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, tiny_config

from elad_core.teacher.oracle.server import read_request_log, request_log_stats

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PREFECT_LOG = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| ")  # a line of Prefect's console log


def elad(*args: str) -> subprocess.CompletedProcess:
    """The `elad` command as a user runs it (its own process)."""
    return subprocess.run([sys.executable, "-c", "from flows.cli import app; app()", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _write(tmp_path, cfg: dict, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def one_error_line(res: subprocess.CompletedProcess) -> str:
    """The run's one `error:` line; asserts exit 2, no traceback, and that nothing but
    Prefect's own log lines (its temporary server stopping) follows it."""
    out = res.stdout + res.stderr
    assert res.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = res.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert all(PREFECT_LOG.match(x) for x in lines[errors[0] + 1:] if x.strip()), lines
    return lines[errors[0]]


def test_a_dead_endpoint_ends_with_one_line(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    cfg = tiny_config(tmp_path, rounds=1)
    cfg["teacher"].update(model="openai/local-model", api_base=base, retries=1)
    line = one_error_line(elad("run", "-c", _write(tmp_path, cfg, "dead")))
    assert f"teacher openai/local-model at {base}: connection refused" in line
    assert "teacher.api_base" in line and "after 2 attempt(s)" in line


def test_a_slow_server_times_out_resumes_and_completes_without_paying_twice(tmp_path):
    run_dir = tmp_path / "runs" / "t"
    log = run_dir / "oracle_requests.jsonl"
    # 1. a fixed 1 s timeout; half the requests hang (the server never answers them)
    cfg = tiny_config(tmp_path, rounds=1)
    cfg["teacher"].update(timeout_s=1.0, retries=0,
                          oracle={"timeout_rate": 0.5, "hang_s": 30, "seed": 0})
    line = one_error_line(elad("run", "-c", _write(tmp_path, cfg, "hangs")))
    assert re.search(r"teacher openai/oracle at http://127\.0\.0\.1:\d+/v1: no reply within 1 s",
                     line), line
    assert "teacher.timeout_s" in line and "resumes" in line
    first = request_log_stats(read_request_log(log))
    assert 0 < first["completions"] < 4, first  # part of the first batch (4) was received

    # 2. the same run again, its server now slower (1.2 s a reply) than that fixed timeout:
    # the default timeout, scaled (1 s + 512 tokens × 2 in flight / 1000 tokens/s = 2.02 s),
    # waits for it; what run 1 received is not asked again
    cfg["teacher"].pop("timeout_s")
    cfg["teacher"].update(timeout_base_s=1.0, min_tokens_per_s=1000.0,
                          oracle={"latency_s": 1.2})
    res = elad("run", "-c", _write(tmp_path, cfg, "slow"))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    stats = request_log_stats(read_request_log(log))
    assert stats["paid_twice"] == 0, stats
    assert stats["completions"] == 8  # the seed round's 8 questions, each paid once
    manifest = json.loads((run_dir / "round_000" / "manifest.json").read_text())
    assert manifest["annotated"] == 8 and manifest["annotations_ok"] == 8
