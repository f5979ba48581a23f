"""The oracle teacher's judgments on real GSM8K solutions (docs/design.md §2.4).

Examples are the first 20 rows of the embedded GSM8K train split, read directly. Gold lines
quoted in comments are copied from those rows.
"""

from __future__ import annotations

import json
import re

import pytest

from elad_core.elad import prompts
from elad_core.elad.gsm8k import resolve_split
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.errors import PermanentTeacherError
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.judging import UnknownQuestion, question_key

GSM8K_TRAIN = resolve_split("gsm8k", "train")  # the embedded copy (elad_core/data/gsm8k)


def _rows(n: int = 20) -> list[dict]:
    with GSM8K_TRAIN.open(encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


@pytest.fixture(scope="module")
def examples(rows: list[dict]) -> list[Example]:
    out = []
    for i, row in enumerate(rows):
        rationale, raw = split_rationale(row["answer"])
        out.append(Example(f"gsm8k-train-{i}", row["question"], rationale, normalize_answer(raw)))
    return out


@pytest.fixture(scope="module")
def judge(examples: list[Example]) -> OracleJudge:
    return OracleJudge(examples)


def _dialogue(question: str, steps: list[str], judge: OracleJudge, last: dict | None = None):
    """CLEAR conversation proposing `steps` (teacher turns filled in by the judge itself),
    optionally ending with `last` instead of a step; returns the judge's reply to the last turn."""
    messages = [{"role": "system", "content": prompts.TEACHER_SYSTEM}]
    turns = [prompts.clear_first_message(question, steps[0])]
    turns += [prompts.clear_next_message(s) for s in steps[1:]]
    if last is not None:
        turns.append(last)
    for turn in turns[:-1]:
        messages += [turn, {"role": "assistant", "content": judge.reply(messages + [turn])[0]}]
    return judge.reply(messages + [turns[-1]])


def _gold(example: Example) -> list[str]:
    return example.rationale.split("\n")


def test_cot_returns_the_gold_solution(judge, examples, rows):
    for example, row in zip(examples, rows, strict=True):
        text, qid, mode = judge.reply(prompts.cot_messages(example.question))
        # GSM8K's answer field is exactly "<steps>\n#### <answer>", so the oracle's CoT reply
        # (gold rationale + "\n#### " + normalised answer) reproduces it byte for byte.
        assert (text, qid, mode) == (row["answer"], example.id, "cot")


def test_question_lookup_ignores_case_and_spacing(judge, examples):
    shouted = "  " + examples[0].question.upper().replace(" ", "   ")
    # question_key lowercases and collapses whitespace, so this is the same question.
    assert question_key(shouted) == question_key(examples[0].question)
    assert judge.reply(prompts.cot_messages(shouted))[1] == examples[0].id


def test_gold_step_accepted_with_the_gold_line(judge, examples):
    betty = examples[2]  # "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50." ...
    text, qid, mode = _dialogue(betty.question, [_gold(betty)[0]], judge)
    # The step is the gold line itself: correct, and the teacher's version is that line.
    assert (text, qid, mode) == ("Yes.\n" + _gold(betty)[0], betty.id, "clear")


def test_every_unannotated_gold_step_accepted(judge, examples):
    # A student writing the gold steps WITHOUT the <<expr=value>> annotations: each plain
    # "a op b = c" is true and its result is a gold intermediate result, so every step is
    # accepted and the teacher's version is the annotated gold line. Rows 8, 10 and 17 are left
    # out: their plain text has algebra ("S + 143", "2 * 2S = 4S") or no number-op-number
    # equation, which the arithmetic rule cannot verify (a step with '=' and no calculation).
    for example in [e for i, e in enumerate(examples) if i not in (8, 10, 17)]:
        gold = _gold(example)
        plain = [re.sub(r"<<[^<>]*>>", "", line) for line in gold]
        for k in range(len(plain)):
            assert _dialogue(example.question, plain[: k + 1], judge)[0] == "Yes.\n" + gold[k]


def test_paraphrased_step_gets_the_teacher_version(judge, examples):
    natalia = examples[0]  # gold: "Natalia sold 48/2 = <<48/2=24>>24 clips in May." ...
    text, _, _ = _dialogue(natalia.question, ["In May she sold half: 48 / 2 = 24 clips."], judge)
    # 48 / 2 = 24 is true and 24 is the gold value of line 0: accepted, ŝ1 is gold line 0.
    assert text == "Yes.\nNatalia sold 48/2 = <<48/2=24>>24 clips in May."


def test_wrong_arithmetic_rejected_with_all_gold(judge, examples):
    natalia = examples[0]
    text, _, _ = _dialogue(natalia.question, ["Natalia sold 48/2 = <<48/2=26>>26 clips in May."],
                           judge)
    # 48/2 is 24, not 26: rejected at the first step, so all gold lines + the answer follow.
    assert text == "No.\n" + natalia.rationale + "\n#### 72"


def test_true_arithmetic_with_foreign_result_rejected(judge, examples):
    betty = examples[2]
    gold = _gold(betty)
    steps = [gold[0], "So she has 50 + 15 = $65."]
    text, _, mode = _dialogue(betty.question, steps, judge)
    # 50 + 15 = 65 is true, but 65 is neither a gold result (50, 30, 5) nor a number of the
    # question (100, 15): rejected. Step 1 was accepted and produced gold line 0 (value 50), so
    # the remaining gold lines are lines 1 and 2, then the gold answer 5.
    assert mode == "clear"
    assert text == "No.\n" + gold[1] + "\n" + gold[2] + "\n#### 5"


def test_step_with_equals_but_no_calculation_rejected(judge, examples):
    betty = examples[2]
    text, _, _ = _dialogue(betty.question, ["Let x = the money Betty has."], judge)
    # It has '=' but no "a op b = c" the oracle can check: not a pure restatement -> No.
    assert text.startswith("No.\n")


def test_restatement_and_question_number_keep_the_student_step(judge, examples):
    betty = examples[2]
    restate = "Her parents give her $15."
    text, _, _ = _dialogue(betty.question, [restate], judge)
    # No calculation and no '=': a pure restatement is correct; no gold line matches it, so
    # the teacher's version is the student's own step.
    assert text == "Yes.\n" + restate
    from_question = "The wallet costs 50 * 2 = $100."
    text, _, _ = _dialogue(betty.question, [from_question], judge)
    # 50 * 2 = 100 is true and 100 is a number of the question (not a gold result): correct,
    # the student's own step is returned.
    assert text == "Yes.\n" + from_question


def test_clear_final_after_all_steps_accepted(judge, examples):
    betty = examples[2]
    gold = _gold(betty)
    text, _, mode = _dialogue(betty.question, gold, judge, last=prompts.clear_final_message())
    # Every gold line was produced by an accepted step: nothing remains but the answer.
    assert (text, mode) == ("#### 5", "clear")
    text, _, _ = _dialogue(betty.question, gold[:1], judge, last=prompts.clear_final_message())
    # Only line 0 was produced: lines 1 and 2 remain before the answer.
    assert text == gold[1] + "\n" + gold[2] + "\n#### 5"


def test_unknown_question_raises(judge):
    with pytest.raises(UnknownQuestion, match="unknown question 'What is the airspeed"):
        judge.reply(prompts.cot_messages("What is the airspeed of an unladen swallow?"))
    # UnknownQuestion is permanent: retrying cannot make the oracle know the question.
    assert issubclass(UnknownQuestion, PermanentTeacherError)
