"""Parsing student and teacher text. Never raises: a miss is recorded as a status.

docs/design.md §2.1: steps are the non-empty lines of an explanation; the final answer is read
from a closing `#### <answer>` line and normalised per answer family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

ANSWER_MARK = "####"
FAMILIES = ("number", "option", "label", "yesno")
NLI_LABELS = ("entailment", "neutral", "contradiction")

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_CALC_RE = re.compile(r"<<([^<>=]+)=([^<>]+)>>")


@dataclass(frozen=True)
class ParsedAnswer:
    """answer: normalised answer or None; status: ok | no_answer | unparsable."""

    answer: str | None
    status: str
    raw: str | None = None


def split_steps(explanation: str) -> list[str]:
    """Non-empty, stripped lines of an explanation, the `#### answer` line(s) excluded."""
    return [
        line.strip()
        for line in explanation.splitlines()
        if line.strip() and not line.strip().startswith(ANSWER_MARK)
    ]


def split_rationale(solution: str) -> tuple[str, str | None]:
    """GSM8K `answer` field -> (steps joined by newlines, raw text after the last `####`)."""
    steps = split_steps(solution)
    marks = [line for line in solution.splitlines() if line.strip().startswith(ANSWER_MARK)]
    raw = marks[-1].strip()[len(ANSWER_MARK):].strip() if marks else None
    return "\n".join(steps), raw


def normalize_number(raw: str) -> str | None:
    """'1,000' / '$5.50' / '72.' / '3/4' -> canonical number string ('1000', '5.5', '72', '0.75').

    Returns None when no number can be read. Integral values print without a decimal point.
    """
    text = raw.replace(",", "").replace("$", "").replace("%", "").strip()
    match = _NUMBER_RE.search(text)
    if match is None:
        return None
    try:
        value = Fraction(match.group(0))
    except (ValueError, ZeroDivisionError):
        return None
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def normalize_answer(raw: str, family: str = "number") -> str | None:
    """Normalise an answer string for its family (docs/design.md §2.1); None when unreadable."""
    text = raw.strip().strip(".").strip()
    if family == "number":
        return normalize_number(text)
    low = text.lower()
    if family == "option":
        m = re.match(r"^\(?([a-eA-E])\)?(?:[\s).:]|$)", text)
        return m.group(1).upper() if m else None
    if family == "label":
        for label in NLI_LABELS:
            if low.startswith(label):
                return label
        return None
    if family == "yesno":
        if low.startswith("yes"):
            return "yes"
        if low.startswith("no"):
            return "no"
        return None
    raise ValueError(f"unknown answer family {family!r}; expected one of {FAMILIES}")


def parse_answer(text: str, family: str = "number") -> ParsedAnswer:
    """Read the final answer from the last `#### <answer>` occurrence of `text`.

    Returns ParsedAnswer(answer, status): status 'no_answer' when there is no `####`,
    'unparsable' when the text after it cannot be normalised. Never raises.
    """
    idx = text.rfind(ANSWER_MARK)
    if idx < 0:
        return ParsedAnswer(None, "no_answer")
    raw = text[idx + len(ANSWER_MARK):].strip().split("\n", 1)[0].strip()
    answer = normalize_answer(raw, family) if raw else None
    return ParsedAnswer(answer, "ok" if answer is not None else "unparsable", raw)


def parse_probe_answer(continuation: str, family: str = "number") -> str | None:
    """Answer of a probe: the text the student wrote right after the `#### ` cue (first line)."""
    first = continuation.strip().split("\n", 1)[0]
    return normalize_answer(first, family) if first else None


def gsm8k_calculations(rationale: str) -> list[tuple[str, str]]:
    """GSM8K `<<expr=value>>` annotations in order, as (expr, value) string pairs."""
    return [(e.strip(), v.strip()) for e, v in _CALC_RE.findall(rationale)]


def numbers_in(text: str) -> list[str]:
    """Every number in `text`, normalised (commas and `$` stripped)."""
    found = re.findall(r"\d[\d,]*(?:\.\d+)?", text)
    return [n for n in (normalize_number(f) for f in found) if n is not None]
