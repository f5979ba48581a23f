"""`elad run` as a user runs it, against what real teachers and real data do (issue #15): a
teacher whose CoT replies use real layouts (no `####`) is trained on; one whose replies hold
no answer stops after its first batch with one line, no traceback, and a re-run pays nothing
twice; a file with repeated questions runs and says what was merged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow


def elad(*args: str) -> subprocess.CompletedProcess:
    """The `elad` command as a user runs it (its own process, stdout + stderr together)."""
    return subprocess.run([sys.executable, "-c", "from flows.cli import app; app()", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def _config(tmp_path, style: str, rounds: int) -> str:
    cfg = tiny_config(tmp_path, rounds=rounds)
    cfg["teacher"]["oracle"] = {"reply_style": style}
    path = tmp_path / f"{style}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _requests(run_dir) -> int:
    log = run_dir / "oracle_requests.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_teacher_in_real_layouts_is_trained_on(tmp_path):
    res = elad("run", "-c", _config(tmp_path, "real", 1))
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((tmp_path / "runs" / "t" / "round_000" / "manifest.json").read_text())
    assert manifest["annotated"] == 8
    assert manifest["annotations_ok"] / manifest["annotated"] >= 0.95
    assert manifest["train_examples"] == manifest["annotations_ok"]
    assert manifest["teacher_usable_rate"] >= 0.95 and manifest["teacher_gold_agreement"] == 1.0


def test_a_teacher_without_answers_stops_after_one_batch_and_never_pays_twice(tmp_path):
    cfg = _config(tmp_path, "no_answer", 2)
    run_dir = tmp_path / "runs" / "t"
    res = elad("run", "-c", cfg)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    # one line on stderr names the cause and shows one raw reply (the log has its own copy)
    lines = [x for x in res.stderr.splitlines() if x.startswith("stopped in round 0")]
    assert len(lines) == 1 and "0 of 4 usable (4 unparsable" in lines[0]
    assert "replied '" in lines[0]  # one raw reply shown
    assert _requests(run_dir) == 4  # the first batch only (teacher.batch_size 4)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"].startswith("stopped in round 0: teacher replies unusable")
    manifest = json.loads((run_dir / "round_000" / "manifest.json").read_text())
    assert manifest["unusable_teacher_tokens"] == manifest["teacher_tokens"] > 0
    # the same run again: what was paid for is reused, no request is sent
    again = elad("run", "-c", cfg)
    assert again.returncode == 1 and "Traceback" not in again.stdout + again.stderr
    assert _requests(run_dir) == 4


def test_a_file_with_repeated_questions_runs_and_reports_what_was_merged(tmp_path):
    from elad_core import SHIPPED_DATA

    rows = [json.loads(x) for x in
            (SHIPPED_DATA / "gsm8k" / "train.jsonl").read_text().splitlines()[:30]]
    data = tmp_path / "data"
    data.mkdir()
    # 30 questions, 6 of them repeated once (one in upper case): the same answers
    repeats = rows[:5] + [{**rows[5], "question": rows[5]["question"].upper()}]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + repeats))
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    cfg = tiny_config(tmp_path, rounds=1)
    cfg["data"] = {"dataset": str(data), "pool_size": None, "eval_size": 4}
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = elad("run", "-c", str(path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pool (" in res.stdout and "merged 6 repeated question(s) with the same answer" in res.stdout
    summary = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    assert summary["data"]["duplicates"]["pool"] == {"merged": 6, "conflicting": 0, "removed": 0}
    pool = (tmp_path / "runs" / "t" / "data" / "pool.parquet")
    from elad_core.files import read_parquet

    assert len(read_parquet(pool)) == 30
