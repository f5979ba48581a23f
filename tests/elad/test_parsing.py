"""Parsing never raises and records misses (docs/design.md §2.1)."""

import pytest

from elad_core.explanations.steps import (
    gsm8k_calculations,
    parse_probe_answer,
    split_rationale,
    split_steps,
)
from elad_core.explanations.answers import normalize_answer, normalize_number, parse_answer

GSM = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
       "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")


def test_split_steps_drops_blank_and_answer_lines():
    # two computation lines; the blank line and the '#### 72' line are not steps
    assert split_steps("a = 1\n\n  b = 2  \n#### 3") == ["a = 1", "b = 2"]


def test_split_rationale_on_real_gsm8k_answer():
    steps, raw = split_rationale(GSM)
    assert steps.count("\n") == 1 and raw == "72"


@pytest.mark.parametrize("raw,expected", [
    ("1,000", "1000"),      # thousands separator stripped
    ("$5.50", "5.5"),       # dollar sign stripped, trailing zero gone
    ("72.", "72"),          # sentence-final period
    ("-3", "-3"),
    ("3/4", "0.75"),        # a fraction compares as its value
    ("18.0", "18"),         # integral floats print as integers
    ("abc", None),          # no number at all
])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_parse_answer_statuses():
    assert parse_answer("x\n#### 1,234").answer == "1234"
    assert parse_answer("no mark here").status == "no_answer"
    miss = parse_answer("#### lots")
    assert miss.status == "unparsable" and miss.answer is None and miss.raw == "lots"
    # the LAST mark wins: a student that wrote two answers is judged on its final one
    assert parse_answer("#### 1\n#### 2").answer == "2"


@pytest.mark.parametrize("raw,family,expected", [
    ("(C) a dog", "option", "C"), ("b", "option", "B"), ("F", "option", None),
    ("Entailment.", "label", "entailment"), ("maybe", "label", None),
    ("Yes, because", "yesno", "yes"), ("no", "yesno", "no"),
])
def test_other_families(raw, family, expected):
    assert normalize_answer(raw, family) == expected


def test_probe_answer_reads_first_line_only():
    assert parse_probe_answer(" 42\nQuestion: ...") == "42"
    assert parse_probe_answer("") is None


def test_gsm8k_calculations():
    assert gsm8k_calculations(GSM) == [("48/2", "24"), ("48+24", "72")]


@pytest.mark.parametrize("text", [GSM, "x\n#### 1,234", "#### 1\n#### 2", "a\n#### $5.50", "#### 72 clips"])
def test_teacher_extractor_reads_hash_lines_as_parse_answer(text):
    # the oracle teacher's `#### N` replies read the same through the teacher-side extractor
    from elad_core.explanations.answers import extract_answer
    assert extract_answer(text) == (parse_answer(text).answer, "hash")


# ----------------------------------------------------------- the answer reader (issue #22)
# elad_core/explanations/answers/; the contract over real-model replies is test_real_replies.py.
from elad_core.explanations.answers import (
    ANSWER_RULES,
    STRICT_RULES,
    extract_answer,
    flexible_answer,
)
from elad_core.explanations.steps import teacher_solution

Q = "Janet has 16 eggs. She eats 3 and bakes with 4. She sells the rest at $2 each. How much does she make?"


@pytest.mark.parametrize("reply, expected", [
    # any words or a parenthetical between "answer" and its verb
    ("The answer to this question is 42", ("42", "answer_is")),
    ("So the final answer (in dollars) is $42.", ("42", "answer_is")),
    ("The answer to how many eggs she sells is 9.", ("9", "answer_is")),
    ("The final answer for part two would be 7 apples.", ("7", "answer_is")),
    # a closing remark after the answer
    ("The answer is 42. I hope this helps!", ("42", "answer_is")),
    ("work\n42\n\nI hope this helps! Let me know if you have questions.", ("42", "last_line")),
    # the statement nearest the end wins, whichever rule reads it
    ("#### 40\nWait, I made an error. The answer is 42.", ("42", "answer_is")),
    ("The answer is 40.\n\\boxed{42}", ("42", "boxed")),
    ("**Answer:**\n42 apples\nThat is all.", ("42", "answer_label")),
    ("The answer is: The answer is: 42 apples", ("42", "answer_is")),
])
def test_strict_statements(reply, expected):
    assert extract_answer(reply) == expected


@pytest.mark.parametrize("reply, expected", [
    ("#### <answer>", (None, None)),
    ("The answer is <number>.", (None, None)),
    ("Answer: [answer]", (None, None)),
    # a run of protocol echoes: `#### <answer>` then an enumeration - not read as 17
    ("#### <answer>\n" + "\n".join(f"#### {i}" for i in range(1, 18)), (None, None)),
    ("She makes 9 * 2 = 18 dollars.\n#### <answer>\n#### 1\n#### 2\n#### 3", ("18", "flexible")),
    ("#### 1\n#### 2\n#### 3\n#### 4", (None, None)),  # an enumeration is not an answer
    ("x\n#### 1\n#### 2", ("2", "hash")),  # two answers: the last one (as parse_answer)
])
def test_protocol_echoes_are_not_answers(reply, expected):
    assert extract_answer(reply) == expected


@pytest.mark.parametrize("reply, family, expected", [
    ("She sells 16 - 3 - 4 = 9 eggs, so she makes 9 * 2 = $18 every day.", "number", "18"),
    ("Janet makes $18 every day. This is the answer to the question.", "number", "18"),
    ("So she makes 18 dollars.\n\nI hope this helps!", "number", "18"),
    ("The total is 9 + 3 = 12 and then we", "number", None),  # cut off at the token limit
    ("First we add 16 and", "number", None),
    ("So 6 / 2 = 3 pieces.\n\nLet's re-arrange them to check.", "number", None),  # more work announced
    ("So far 6 / 2 = 3 pieces. Next, we multiply 3 by 4.", "number", None),
    ("To find it, we compute 1.1 * 1.", "number", None),  # ends on an expression to work out
    ("Now, we can calculate the height: h = 6 + 1 = 7.", "number", "7"),  # worked out: read
    ("Then 6 * 4 = 24, and 24 *", "number", None),  # "*" here is an operator, not markup
    ("So she makes **$18**", "number", "18"),  # closing markup closes the reply
    ("12.11 (2+32)", "number", "12.11"),  # operands of an expression are not results
    ("A petite breakfast [B].", "option", "B"),
    ("So it is the bank, (A).", "option", "A"),
    ("It could be (C) market or (D) train station.", "option", None),  # a hedge states none
    ("(A) bank (B) library (C) mall", "option", None),  # the choices copied
    ("The premise does not entail the hypothesis, so this is a contradiction.", "label",
     "contradiction"),
    ("The premise does not entail the hypothesis.", "label", None),
    ("Answer entailment, neutral or contradiction.", "label", None),
    ("No, an hourglass needs gravity. In orbit the sand floats.", "yesno", "no"),
    ("There is no way to tell.", "yesno", None),  # 'no' as a determiner is not an answer
    ("Answer yes or no.", "yesno", None),
])
def test_flexible_rule(reply, family, expected):
    answer, rule = extract_answer(reply, family)
    assert answer == expected and rule == ("flexible" if expected else None)


@pytest.mark.parametrize("reply, family", [
    ("The answer is both a contradiction and an entailment.", "label"),
    ("Answer: (B) or (C)", "option"),
])
def test_a_hedged_statement_states_no_answer(reply, family):
    # (and 'The answer is the letter "E".' is E: quotes around an option are read through)
    assert extract_answer('The answer is the letter "E".', "option") == ("E", "answer_is")
    assert extract_answer(reply, family) == (None, None)


def test_flexible_rule_skips_numbers_copied_from_the_question():
    assert extract_answer("Janet has 16 eggs.", question=Q) == (None, None)
    assert extract_answer("She eats 3 and bakes with 4.", question=Q) == (None, None)
    assert extract_answer("Janet has 16 eggs.") == ("16", "flexible")  # no question: read
    assert extract_answer("She sells 16 - 3 - 4 = 9 eggs.", question=Q) == ("9", "flexible")
    assert extract_answer("So she has 16 - 12 = 4 eggs.", question=Q) == ("4", "flexible")  # '= 4'
    # a strict statement is read even when it equals a number of the question
    assert extract_answer("The answer is 16.", question=Q) == ("16", "answer_is")


def test_flexible_rule_reads_an_option_by_its_text_given_the_question():
    q = "Where is a revolving door a security measure?\nAnswer Choices: (A) bank (B) library (C) mall"
    assert extract_answer("It is a security measure at a bank.", "option", question=q) == ("A", "flexible")
    assert extract_answer("It is a security measure at a bank.", "option") == (None, None)


def test_flexible_answer_is_the_full_reader():
    assert flexible_answer("So she makes $18.", "number", question=Q) == "18"
    assert flexible_answer("#### 18") == "18"
    assert flexible_answer(None) is None and flexible_answer(b"\x00#### 1") is None
    assert flexible_answer("Janet has 16 eggs.", question=Q) is None
    assert "flexible" in ANSWER_RULES and "flexible" not in STRICT_RULES


def test_teacher_solution_with_the_flexible_rule():
    steps, answer, rule = teacher_solution("16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\nHope this helps!",
                                           question=Q)
    assert (steps, answer, rule) == (["16 - 3 - 4 = 9 eggs.", "She makes 9 * 2 = $18."], "18", "flexible")
    assert teacher_solution("Janet has 16 eggs.", question=Q)[1:] == (None, None)
