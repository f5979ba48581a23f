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
