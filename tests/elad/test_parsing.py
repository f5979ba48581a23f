"""Parsing never raises and records misses (docs/design.md §2.1)."""

import pytest

from elad_core.elad.parsing import (
    gsm8k_calculations,
    normalize_answer,
    normalize_number,
    parse_answer,
    parse_probe_answer,
    split_rationale,
    split_steps,
)

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
    from elad_core.elad.parsing import extract_answer
    assert extract_answer(text) == (parse_answer(text).answer, "hash")
