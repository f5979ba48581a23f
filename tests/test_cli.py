"""The `elad` CLI: bad options end with one clear line and exit code 2, nothing written."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def test_unknown_selector(tmp_path):
    res = runner.invoke(app, ["run", "--selector", "bogus", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown selector 'bogus'" in res.output and "Traceback" not in res.output
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  steps: -3\n")
    res = runner.invoke(app, ["run", "-c", str(cfg)])
    assert res.exit_code == 2 and "option 'train.steps'" in res.output


def test_missing_dataset_file(tmp_path):
    res = runner.invoke(app, ["run", "--dataset", str(tmp_path / "nope.jsonl"),
                              "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "file not found" in res.output


def test_teacher_server_command_serves_the_oracle(tmp_path):
    """`elad teacher-server` answers OpenAI-style requests on loopback until stopped."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    elad = Path(sys.executable).with_name("elad")
    proc = subprocess.Popen([str(elad), "teacher-server", "--splits", "test", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from elad_core.data import load_examples
        from elad_core.prompts import cot_messages

        q = load_examples("gsm8k", "test")[0]
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                               json={"model": "oracle", "messages": cot_messages(q.question)})
                break
            except httpx.ConnectError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["choices"][0]["message"]["content"].endswith(f"#### {q.answer}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_arithmetic_task_writes_a_runnable_dataset(tmp_path):
    from elad_core.data import load_examples

    res = runner.invoke(app, ["arithmetic-task", str(tmp_path / "arith"), "--pool", "30",
                              "--test", "5", "--seed", "3"])
    assert res.exit_code == 0, res.output
    # the default split names of `elad run --dataset <folder>`
    assert len(load_examples(str(tmp_path / "arith"), "train")) == 30
    assert len(load_examples(str(tmp_path / "arith"), "test")) == 5
    bad = runner.invoke(app, ["arithmetic-task", str(tmp_path / "x"), "--pool", "0"])
    assert bad.exit_code == 2 and "--pool" in bad.output
