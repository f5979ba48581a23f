"""benchmarks/selection_efficiency.py (issues #14, #16): rounds through the product's flow.

`--quick` with one regime and two methods, run as a real subprocess into tmp_path: the rows
of results.jsonl, the shared warm start and round-1 candidates of a seed (a paired
comparison), cumulative teacher tokens, the summary and plot, and a rerun that recomputes
nothing. About a minute on 2 idle cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "selection_efficiency.py"
sys.path.insert(0, str(SCRIPT.parent))

METHODS = ("random:cot", "egss:clear", "egss:cot@clear")
FIELDS = {"setup", "regime", "warm", "method", "selector", "annotator", "seed", "round",
          "teacher_tokens", "active_teacher_tokens", "round_teacher_tokens", "questions",
          "round_questions", "candidates", "candidates_sha", "accuracy", "eval_loss",
          "budget_stopped", "wall_s", "run_dir"}


def _run(out: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(home)}  # its own Prefect database
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--regimes", "warm40",
         "--methods", ",".join(METHODS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_quick_run_rows_are_paired_and_resumable(tmp_path):
    out = tmp_path / "bench"
    first = _run(out, tmp_path / "prefect_home")
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len(METHODS) * 2 * 3  # methods × 2 seeds × rounds 0..2
    for r in rows:
        assert FIELDS <= set(r), FIELDS - set(r)
        assert r["regime"] == "warm40" and r["warm"] == 40 and r["method"] in METHODS
    by = {(r["method"], r["seed"], r["round"]): r for r in rows}
    for m in METHODS:
        for seed in (0, 1):
            curve = [by[(m, seed, k)] for k in range(3)]
            tokens = [c["teacher_tokens"] for c in curve]
            assert tokens == sorted(tokens) and tokens[2] > tokens[0] > 0, (m, tokens)
            assert [c["questions"] for c in curve] == sorted(c["questions"] for c in curve)
            # cumulative, warm start included
            assert tokens[2] == tokens[0] + sum(c["round_teacher_tokens"] for c in curve[1:])
            assert curve[0]["questions"] == 40 and curve[1]["round_questions"] > 0
            folder = m.replace(":", "_").replace("@", "_at_")
            assert curve[1]["run_dir"] == f"warm40/seed{seed}/{folder}"
    for seed in (0, 1):
        warm = [by[(m, seed, 0)] for m in METHODS]
        # one warm start per seed, shared by both methods
        assert len({(w["accuracy"], w["eval_loss"], w["teacher_tokens"]) for w in warm}) == 1
        assert {w["run_dir"] for w in warm} == {f"warm40/seed{seed}/warm"}
        # round 1: the same 32 candidates for both methods (selection.candidates)
        r1 = [by[(m, seed, 1)] for m in METHODS]
        assert {r["candidates"] for r in r1} == {32}
        assert len({r["candidates_sha"] for r in r1}) == 1
    # different seeds: different warm starts and candidates
    assert by[(METHODS[0], 0, 1)]["candidates_sha"] != by[(METHODS[0], 1, 1)]["candidates_sha"]
    # the round budget ends annotation: CLEAR costs more a question, so it buys fewer
    assert (by[("egss:clear", 0, 1)]["round_questions"]
            < by[("random:cot", 0, 1)]["round_questions"])
    # CoT at equal questions: as many a round as egss:clear bought, with no token budget
    for seed in (0, 1):
        for r in (1, 2):
            matched, clear = by[("egss:cot@clear", seed, r)], by[("egss:clear", seed, r)]
            assert matched["round_questions"] == clear["round_questions"]
            assert matched["round_teacher_tokens"] < clear["round_teacher_tokens"]
    summary = (out / "summary.md").read_text()
    assert "## warm40" in summary and "Paired difference against random:cot" in summary
    assert "| egss:clear | egss:cot@clear |" in summary
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun finds every row and recomputes nothing
    again = _run(out, tmp_path / "prefect_home")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len((out / "results.jsonl").read_text().splitlines()) == len(rows)


def test_rows_are_appended_once_and_intervals_are_students_t(tmp_path):
    from _common import append_row, read_rows, t_interval

    path = tmp_path / "r.jsonl"
    assert append_row(path, {"a": 1, "b": 2, "x": 0.5}, ("a", "b"))
    assert not append_row(path, {"a": 1, "b": 2, "x": 0.7}, ("a", "b"))
    assert append_row(path, {"a": 1, "b": 3, "x": 0.7}, ("a", "b"))
    with path.open("a") as f:
        f.write('{"a": 1, "b"')  # a line torn by a killed writer is skipped
    assert [r["x"] for r in read_rows(path)] == [0.5, 0.7]
    assert t_interval([1.0]) is None
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.303 -> half-width 4.303 / sqrt(3) = 2.484
    assert m == 2.0 and abs(hi - m - 2.484) < 1e-3 and abs(m - lo - 2.484) < 1e-3



def test_a_question_matched_method_is_parsed_and_runs_after_the_one_it_matches():
    from selection_efficiency import parse_args

    a = parse_args(["--methods", "egss:cot@clear,random:cot,egss:clear"])
    assert a.method_list == ["random:cot", "egss:clear", "egss:cot@clear"]
    with pytest.raises(SystemExit):
        parse_args(["--methods", "egss:cot@bogus"])
