"""Usable-reply figures and the unusable-reply stop rule (elad_core.elad.reply_quality), and
the oracle's real-model reply styles read back by the product's parser."""

from __future__ import annotations

import pytest

from elad_core.explanations.answers import STRICT_RULES, extract_answer
from elad_core.explanations.records import Annotation
from elad_core.elad.reply_quality import raw_excerpt, reply_quality, unusable_stop
from elad_core.teacher.oracle.styles import write_solution


def _ann(qid: str, status: str, tokens: int = 10, cost: float = 0.01, agrees=None,
         raw: str = "reply") -> Annotation:
    return Annotation(qid, "cot", status, "", None, None, None, raw, "" if status == "ok" else
                      "no answer", tokens, 0, cost, 1, teacher_agrees=agrees)


def test_reply_quality_counts_unusable_spend_and_agreement():
    anns = [_ann("a", "ok", agrees=True), _ann("b", "ok", agrees=False), _ann("c", "ok"),
            _ann("d", "unparsable", tokens=30, cost=0.03), _ann("e", "failed", tokens=0, cost=0)]
    q = reply_quality(anns)
    assert q["teacher_usable_rate"] == 0.6
    assert q["teacher_gold_agreement"] == 0.5  # 1 of the 2 usable replies with gold
    assert q["unusable_teacher_tokens"] == 30 and q["unusable_cost_usd"] == 0.03
    assert reply_quality([])["teacher_usable_rate"] is None


def test_reply_quality_reports_each_rules_share_of_the_usable_replies():
    from dataclasses import replace

    anns = [replace(_ann("a", "ok"), answer_rule="hash"), replace(_ann("b", "ok"), answer_rule="hash"),
            replace(_ann("c", "ok"), answer_rule="answer_turn"), _ann("d", "ok"),
            _ann("e", "unparsable")]
    assert reply_quality(anns)["answer_rules"] == {"answer_turn": 0.25, "hash": 0.5, "none": 0.25}


@pytest.mark.parametrize(("statuses", "fraction", "stops"), [
    (["ok"] * 4, 0.5, False),
    (["ok", "ok", "unparsable", "unparsable"], 0.5, False),  # exactly half: kept
    (["ok", "unparsable", "unparsable", "failed"], 0.5, True),
    (["unparsable"] * 4, 0.0, True),  # none usable always stops
    (["ok", "unparsable", "unparsable", "unparsable"], 0.0, False),
    ([], 0.5, False),
])
def test_unusable_stop(statuses, fraction, stops):
    why = unusable_stop(statuses, fraction)
    assert (why is not None) == stops
    if stops:
        assert why.startswith("teacher replies unusable: ") and "min_usable_fraction" in why


def test_raw_excerpt_is_one_line_and_short():
    line = raw_excerpt(_ann("q1", "unparsable", raw="Step one.\n\nStep two " + "x" * 400))
    assert "\n" not in line and line.startswith("question q1 (unparsable: no answer) replied ")
    assert len(line) < 260 and line.endswith("...'")


@pytest.mark.parametrize("qid", [f"q{i}" for i in range(12)])  # every layout of `real`
def test_real_styles_are_read_by_the_parser_and_no_answer_is_not(qid):
    steps = ["Natalia sold 48/2 = 24 clips in May.", "She sold 48 + 24 = 72 clips in all."]
    real = write_solution(steps, "72", qid, "real")
    assert "####" not in real
    assert extract_answer(real, "number")[0] == "72"
    # no answer is *stated*: only the flexible rule (lm-eval's last-number reading, which the
    # annotators treat as unread and follow with an answer turn) finds the last result
    answer, rule = extract_answer(write_solution(steps, "72", qid, "no_answer"), "number")
    assert answer != "72" or rule not in STRICT_RULES
    with pytest.raises(ValueError):
        write_solution(steps, "72", qid, "bogus")


# (family, steps, stated answer, question): a teacher in real layouts, every answer family
FAMILIES = [
    ("number", ["Natalia sold 48/2 = 24 clips in May.", "She sold 48 + 24 = 72 clips in all."],
     "72", "Natalia sold clips to 48 of her friends in April, and half as many in May. How many?"),
    ("option", ["A revolving door lets people through while keeping air in.",
                "Banks use them as a security measure."], "C",
     "Where is a revolving door convenient? (A) bank (B) library (C) security measure (D) mall"),
    ("label", ["The premise says a man plays a guitar on stage.",
               "The hypothesis says a man performs music, which the premise shows."],
     "entailment", "Premise: A man plays a guitar on stage. Hypothesis: A man performs music."),
    ("yesno", ["An hourglass needs gravity to move its sand.",
               "In orbit there is no felt gravity, so the sand would not fall."], "no",
     "Would an hourglass work in orbit?"),
]


@pytest.mark.parametrize("family,steps,answer,question", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_teacher_in_real_layouts_is_read_in_every_family(family, steps, answer, question):
    """Issue #22: a run whose teacher writes real layouts trains on >= 95% of its CoT replies in
    every family (tests/flows/test_real_teachers_and_data.py runs it end to end for numbers)."""
    qids = [f"q{i}" for i in range(40)]  # every layout of `real` several times
    read = [extract_answer(write_solution(steps, answer, q, "real"), family, question=question)[0]
            for q in qids]
    assert sum(r == answer for r in read) / len(read) >= 0.95, read
    none = [extract_answer(write_solution(steps, answer, q, "no_answer"), family,
                           question=question)[0] for q in qids]
    assert none.count(answer) == 0, none
