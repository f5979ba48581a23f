"""Per-round logic of elad_core.elad.rounds and the teacher batch task around it (issue #14):
teacher.filter_wrong_teacher (agreement with gold marked, disagreeing annotations kept in
the parquet and left out of training) and per-run teacher request counts."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from elad_core.elad.annotators import AnnotationRequest
from elad_core.elad.gsm8k import load_examples
from elad_core.explanations.prompt import student_prompt
from elad_core.explanations.records import Annotation, from_rows
from elad_core.elad.rounds import mark_teacher_agreement, training_pairs
from elad_core.files import read_parquet
from elad_core.teacher.config import TeacherConfig
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import FaultConfig, OracleServer


def _ann(qid: str, answer: str | None, status: str = "ok", **kw) -> Annotation:
    target = f"step\n#### {answer}" if status == "ok" else ""
    return Annotation(qid, "cot", status, target, answer, None, None, "", "", 1, 1, 0.0, 1, **kw)


def test_mark_teacher_agreement_compares_ok_answers_with_gold():
    anns = [_ann("a", "3"), _ann("b", "4"), _ann("c", "5"), _ann("d", None, "failed"),
            _ann("e", "7")]
    gold = {"a": "3", "b": "40", "c": None, "d": "1"}  # c unlabelled, e not in the pool's gold
    marked = mark_teacher_agreement(anns, gold)
    assert [a.teacher_agrees for a in marked] == [True, False, None, None, None]
    # nothing else changes and nothing is dropped: the annotations stay as the teacher gave them
    assert [a.__dict__ | {"teacher_agrees": None} for a in marked] == [a.__dict__ for a in anns]


def test_training_pairs_leave_out_wrong_teacher_only_when_asked():
    questions = {q: f"question {q}" for q in "abcd"}
    anns = [_ann("a", "3", teacher_agrees=True), _ann("b", "4", teacher_agrees=False),
            _ann("c", "5"), _ann("d", None, "failed")]
    pairs, skipped = training_pairs(anns, questions)
    assert [p for p, _ in pairs] == [student_prompt(questions[q]) for q in "abc"]
    assert skipped == Counter({"failed": 1})
    pairs, skipped = training_pairs(anns, questions, filter_wrong_teacher=True)
    assert pairs == [(student_prompt(questions["a"]), "step\n#### 3"),
                     (student_prompt(questions["c"]), "step\n#### 5")]
    assert skipped == Counter({"failed": 1, "teacher_wrong": 1})


def test_old_annotation_rows_load_without_the_new_field():
    row = {k: v for k, v in _ann("a", "3").__dict__.items() if k != "teacher_agrees"}
    assert from_rows(Annotation, [row])[0].teacher_agrees is None


@pytest.fixture(scope="module")
def examples():
    return load_examples("gsm8k", "train")[:6]


def test_batch_task_marks_agreement_and_counts_requests_per_run(examples, tmp_path):
    """Two runs annotating at once in one process: each run's count holds its own requests only;
    each annotation records whether the (oracle) teacher agrees with the gold answer."""
    from tasks.elad.annotate import annotate_batch_task
    from tasks.teacher import RUN_COUNTS

    cfg = TeacherConfig(max_concurrency=2, retry_delay_s=0.0)
    key = {"model": cfg.model, "max_clear_turns": cfg.max_clear_turns}
    batches = {"run-a": examples[:2], "run-b": examples[2:]}
    # the oracle answers with the gold answer: one "gold" is made wrong, one left unlabelled
    gold = {e.id: e.answer for e in examples} | {examples[0].id: "-1", examples[3].id: None}
    results, errors = {}, []
    with OracleServer(OracleJudge(examples), FaultConfig(latency_s=0.1)) as srv:
        def annotate(run: str) -> None:
            try:
                reqs = [AnnotationRequest(e.id, e.question) for e in batches[run]]
                results[run] = annotate_batch_task.fn(
                    "cot", reqs, key, cfg, srv.api_base, "number",
                    tmp_path / run / "annotations.parquet",
                    gold={e.id: gold[e.id] for e in batches[run]}, run=run)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=annotate, args=(run,)) for run in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert list(results["run-a"].statuses) == ["ok"] * 2
    assert list(results["run-b"].statuses) == ["ok"] * 4
    assert RUN_COUNTS.pop("run-a") == (2, 0, 0) and RUN_COUNTS.pop("run-b") == (4, 0, 0)
    rows = read_parquet(tmp_path / "run-a" / "annotations.parquet") + read_parquet(
        tmp_path / "run-b" / "annotations.parquet")
    assert [r["teacher_agrees"] for r in rows] == [False, True, True, None, True, True]
