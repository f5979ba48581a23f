"""The `elad` CLI: bad options end with one clear line and exit code 2, nothing written."""

from __future__ import annotations

from typing import get_args

import pytest
from typer.testing import CliRunner

from elad_core.elad.annotators import ANNOTATORS
from elad_core.elad.config import DataConfig, RunnerConfig
from elad_core.elad.selectors import SELECTORS
from elad_core.evokd.config import EvoKDDataConfig, EvoKDLoopConfig, EvoKDStudentConfig
from elad_core.student.config import TrainConfig
from elad_core.teacher.config import TeacherConfig
from flows.cli import app

runner = CliRunner()


def _literal(model, field) -> list[str]:
    """The allowed values of a config field, read from its annotation (as the CLI does)."""
    return [v for a in get_args(model.model_fields[field].annotation) or ()
            for v in (get_args(a) or [a]) if isinstance(v, str)]


def _one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unknown_selector(tmp_path):
    res = runner.invoke(app, ["run", "--selector", "bogus", "--runs-dir", str(tmp_path)])
    _one_line_error(res, "Invalid value for '--selector': 'bogus' is not one of",
                    *(repr(name) for name in SELECTORS))
    assert not any(tmp_path.iterdir())  # nothing half-written


def _help(*command: str) -> str:
    res = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    return res.output


def test_run_help_lists_every_choice():
    """`elad run --help` lists each closed set, taken from its one definition (registry or
    config Literal), so a selector or annotator added there shows up here or this fails."""
    out = _help("run")
    assert "<" + "|".join(SELECTORS) + ">" in out
    assert set(_literal(TeacherConfig, "annotator")) == set(ANNOTATORS)
    for option, values in [("--annotator", ANNOTATORS),
                           ("--seed-annotator", _literal(TeacherConfig, "seed_annotator")),
                           ("--format", _literal(DataConfig, "format")),
                           ("--train-mode", _literal(TrainConfig, "mode")),
                           ("--runner", _literal(RunnerConfig, "kind"))]:
        assert f"{option} <{'|'.join(values)}>" in out, option
    assert "auto = full for the embedded student" in out


def test_evokd_help_lists_every_choice():
    out = _help("evokd")
    for option, values in [("--task", _literal(EvoKDDataConfig, "task")),
                           ("--method", _literal(EvoKDLoopConfig, "method")),
                           ("--mode", _literal(EvoKDStudentConfig, "mode"))]:
        assert f"{option} <{'|'.join(values)}>" in out, option


def test_every_command_has_help():
    for command in ([], ["run"], ["plan"], ["evokd"], ["teacher-server"], ["deploy"],
                    ["serve"], ["arithmetic-task"]):
        assert "Usage: " in _help(*command)


@pytest.mark.parametrize(("option", "model", "field"), [
    ("--task", EvoKDDataConfig, "task"), ("--method", EvoKDLoopConfig, "method"),
    ("--mode", EvoKDStudentConfig, "mode")])
def test_unknown_evokd_choice(tmp_path, option, model, field):
    res = runner.invoke(app, ["evokd", option, "bogus", "--runs-dir", str(tmp_path)])
    _one_line_error(res, f"Invalid value for '{option}': 'bogus' is not one of",
                    *(repr(v) for v in _literal(model, field)))
    assert not any(tmp_path.iterdir())


def test_unknown_command_and_option_are_one_line():
    _one_line_error(runner.invoke(app, ["bogus"]), "No such command 'bogus'")
    _one_line_error(runner.invoke(app, ["run", "--bogus"]), "No such option: --bogus")


def test_unknown_selector_in_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("selection:\n  selector: bogus\n")
    res = runner.invoke(app, ["run", "-c", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    _one_line_error(res, "option 'selection.selector'", "unknown selector 'bogus'",
                    *(repr(name) for name in SELECTORS))
    assert not (tmp_path / "runs").exists()


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  steps: -3\n")
    res = runner.invoke(app, ["run", "-c", str(cfg)])
    assert res.exit_code == 2 and "option 'train.steps'" in res.output


def test_unreadable_config_file_is_one_line(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("run_name: caf\xe9\n".encode("latin-1"))
    _one_line_error(runner.invoke(app, ["run", "-c", str(latin1)]),
                    f"{latin1}: not UTF-8")
    _one_line_error(runner.invoke(app, ["run", "-c", str(tmp_path)]),
                    f"{tmp_path}: a folder, not a config file")


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
        from elad_core.elad.gsm8k import load_examples
        from elad_core.elad.prompts import cot_messages

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
    from elad_core.elad.gsm8k import load_examples

    res = runner.invoke(app, ["arithmetic-task", str(tmp_path / "arith"), "--pool", "30",
                              "--test", "5", "--seed", "3"])
    assert res.exit_code == 0, res.output
    # the default split names of `elad run --dataset <folder>`
    assert len(load_examples(str(tmp_path / "arith"), "train")) == 30
    assert len(load_examples(str(tmp_path / "arith"), "test")) == 5
    bad = runner.invoke(app, ["arithmetic-task", str(tmp_path / "x"), "--pool", "0"])
    assert bad.exit_code == 2 and "--pool" in bad.output


def test_choices_reach_the_config(tmp_path, monkeypatch):
    """Each closed-set flag lands on its config field (the flow is not started)."""
    import elad_core.elad.preflight
    from elad_core.errors import ConfigError

    seen = {}

    def stop(cfg, notes=None):
        seen["cfg"] = cfg
        raise ConfigError("stopped before the flow")

    monkeypatch.setattr(elad_core.elad.preflight, "preflight", stop)
    res = runner.invoke(app, ["run", "--runs-dir", str(tmp_path), "--selector", "random",
                              "--annotator", "cot", "--seed-annotator", "clear",
                              "--format", "aqua", "--train-mode", "lora", "--runner", "dask"])
    assert res.exit_code == 2 and "stopped before the flow" in res.output, res.output
    cfg = seen["cfg"]
    assert (cfg.selection.selector, cfg.teacher.annotator, cfg.teacher.seed_annotator,
            cfg.data.format, cfg.train.mode, cfg.runner.kind) == (
        "random", "cot", "clear", "aqua", "lora", "dask")


def test_run_preflights_once_and_the_flow_skips_its_copy(tmp_path, monkeypatch):
    """`elad run` checks its inputs before anything is written and tells the flow so (issue
    #14); a run the CLI did not start (a deployment's) keeps checked=False and the flow's own."""
    import inspect

    import elad_core.elad.preflight
    import flows.cli
    import flows.elad.loop
    from elad_core.errors import ConfigError

    # deployments pass only `config`: the flow runs its pre-flight (tests/flows/test_bad_input.py)
    real = flows.elad.loop.active_distillation
    assert inspect.signature(real.fn).parameters["checked"].default is False
    calls = []
    monkeypatch.setattr(elad_core.elad.preflight, "preflight", lambda cfg, notes=None: calls.append("preflight"))
    monkeypatch.setattr(flows.cli, "start_watchdog", lambda: None)

    def flow(cfg, **kw):
        calls.append(kw)
        raise ConfigError("stopped in the flow")

    monkeypatch.setattr(flows.elad.loop, "active_distillation", flow)
    res = runner.invoke(app, ["run", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "stopped in the flow" in res.output, res.output
    assert calls == ["preflight", {"checked": True, "return_state": True}]
