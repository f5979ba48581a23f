"""The per-round selection report (elad_core.elad.selection_report)."""

from __future__ import annotations

from elad_core.explanations.records import Annotation, Sample
from elad_core.elad.selection_report import gain_per_1k_tokens, majority_answers, selection_report


def _ann(qid: str, answer: str | None, status: str = "ok", tokens: int = 100) -> Annotation:
    return Annotation(qid, "cot", status, "", answer, None, None, "", "", tokens, 0, 0.0, 1)


def _samples(qid: str, answers: list[str | None]) -> list[Sample]:
    return [Sample(qid, i, "", a, "ok" if a else "no_answer", None, 5) for i, a in enumerate(answers)]


def test_majority_answers():
    got = majority_answers(_samples("a", ["3", "4", "4", None]) + _samples("b", [None, None])
                           + _samples("c", ["1", "2"]))
    assert got == {"a": "4", "b": None, "c": "1"}


def test_selected_and_control_are_reported_apart():
    samples = (_samples("s1", ["5", "5"]) + _samples("s2", ["7", "1"]) + _samples("c1", ["2", "2"])
               + _samples("s3", ["9", "9"]))
    anns = [_ann("s1", "6", tokens=300), _ann("s2", "7", tokens=100),
            _ann("s3", None, status="unparsable", tokens=200), _ann("c1", "2", tokens=50)]
    rep = selection_report(anns, {"c1"}, samples)
    assert rep["selected"] == {"questions": 3, "student_agrees_teacher": 0.5,
                               "teacher_usable_rate": 0.6667, "teacher_tokens_per_question": 200.0}
    assert rep["control"] == {"questions": 1, "student_agrees_teacher": 1.0,
                              "teacher_usable_rate": 1.0, "teacher_tokens_per_question": 50.0}
    # no control slice: no control entry; the seed round (no samples): no agreement figure
    seed = selection_report(anns, set(), None)
    assert set(seed) == {"selected"} and seed["selected"]["student_agrees_teacher"] is None


def test_gain_per_1k_tokens():
    assert gain_per_1k_tokens(0.30, 0.25, 20_000) == 0.0025
    assert gain_per_1k_tokens(0.20, 0.25, 10_000) == -0.005
    assert gain_per_1k_tokens(0.3, None, 1000) is None and gain_per_1k_tokens(0.3, 0.2, 0) is None
