"""Bad input (issue #4): each case ends with one clear line naming file, line and field (or the
option), exit code 2, and nothing written under the runs folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
GOOD = [{"question": f"Tom has {i} apples and buys 2 more. How many now?",
         "answer": f"Tom has {i} + 2 = <<{i}+2={i + 2}>>{i + 2} apples.\n#### {i + 2}"}
        for i in range(1, 7)]


def _folder(tmp_path, train: bytes | None, test: bytes | None = None):
    """A GSM8K-format dataset folder; None leaves the split file out."""
    data = tmp_path / "data"
    data.mkdir()
    good = "".join(json.dumps(r) + "\n" for r in GOOD).encode()
    for name, content in (("train", train), ("test", good if test is None else test)):
        if content is not None:
            (data / f"{name}.jsonl").write_bytes(content)
    return data


def _lines(rows: list) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def _run(tmp_path, *args):
    res = runner.invoke(app, ["run", "--runs-dir", str(tmp_path / "runs"), "--pool-size", "4",
                              *args])
    return res


def _assert_one_line_error(res, tmp_path, *needles):
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in res.output
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.parametrize(("train", "needles"), [
    ([*GOOD[:2], b'{"question": "x", "answer": ', *GOOD[2:]],
     ["train.jsonl:3: not valid JSON"]),
    ([GOOD[0], {"question": "How many?"}], ["train.jsonl:2: field 'answer' is missing"]),
    ([GOOD[0], GOOD[1], {"question": "   ", "answer": "#### 1"}],
     ["train.jsonl:3: field 'question' is empty"]),
    ([GOOD[0], {"question": 7, "answer": "#### 1"}],
     ["train.jsonl:2: field 'question' is not a string (got int)"]),
    ([*GOOD[:3], b'{"question": "caf\xe9", "answer": "#### 1"}'], ["train.jsonl:4: not UTF-8"]),
    ([*GOOD[:4], {"question": GOOD[0]["question"].upper(), "answer": "So 999.\n#### 999"}],
     ["train.jsonl:5: field 'question' duplicates line 1", "data.on_duplicate"]),
    ([GOOD[0], {"question": "x" * 1_048_576, "answer": "#### 1"}],
     ["train.jsonl:2: field 'question' is 1,048,576 characters long"]),
    ([GOOD[0], {"question": "How many?", "answer": "no final line"}],
     ["train.jsonl:2: field 'answer' has no final '#### <answer>' line"]),
], ids=["malformed-json", "missing-field", "empty-field", "wrong-type", "non-utf8", "duplicate-id",
        "1mb-question", "no-answer-line"])
def test_bad_rows(tmp_path, train, needles):
    data = _folder(tmp_path, _lines(train))
    _assert_one_line_error(_run(tmp_path, "--dataset", str(data)), tmp_path, *needles)


def test_bad_row_in_the_eval_split(tmp_path):
    data = _folder(tmp_path, _lines(GOOD), test=_lines([GOOD[0], {"answer": "#### 2"}]))
    _assert_one_line_error(_run(tmp_path, "--dataset", str(data)), tmp_path,
                           "test.jsonl:2: field 'question' is missing")


def test_missing_file(tmp_path):
    data = _folder(tmp_path, None)
    _assert_one_line_error(_run(tmp_path, "--dataset", str(data)), tmp_path,
                           "train.jsonl: file not found")


def test_invalid_option_value(tmp_path):
    _assert_one_line_error(_run(tmp_path, "--per-round", "0"), tmp_path,
                           "option 'selection.per_round'", "greater than or equal to 1")


def test_unknown_selector(tmp_path):
    # rejected by the CLI's closed set, which names the allowed values
    _assert_one_line_error(_run(tmp_path, "--selector", "bogus"), tmp_path,
                           "Invalid value for '--selector': 'bogus'", "'egss'", "'random'")


def test_unknown_config_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("teacher:\n  retires: 3\n")
    _assert_one_line_error(_run(tmp_path, "-c", str(cfg)), tmp_path,
                           f"{cfg}: option 'teacher.retires'", "Extra inputs are not permitted")


def test_missing_api_key_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ELAD_TEST_NO_SUCH_KEY", raising=False)
    _assert_one_line_error(_run(tmp_path, "--teacher", "openai/gpt-4o-mini", "--api-key-env",
                                "ELAD_TEST_NO_SUCH_KEY"), tmp_path,
                           "option 'teacher.api_key_env'", "ELAD_TEST_NO_SUCH_KEY is not set")


@pytest.mark.slow
def test_the_flow_checks_inputs_before_writing(prefect_harness, tmp_path):
    """Deployments start the flow without the CLI: it runs the same pre-flight first."""
    from conftest import tiny_config

    from elad_core.elad.config import RunConfig
    from elad_core.errors import DataError
    from flows.elad.loop import active_distillation

    data = _folder(tmp_path, _lines(GOOD), test=_lines([GOOD[0], b"not json"]))
    cfg = RunConfig.model_validate(tiny_config(tmp_path, run_name="bad-eval",
                                               data={"dataset": str(data)}))
    with pytest.raises(DataError, match=r"test\.jsonl:2: not valid JSON"):
        active_distillation(cfg)
    assert not (tmp_path / "runs").exists()
