"""Answer families and their normalisation; the student's strict `#### <answer>` reading.

docs/design.md §2.1 (answers and answer families). Four answer families: "number" (GSM8K),
"option" (A-E, AQuA / CommonsenseQA), "label" (entailment / neutral / contradiction, e-SNLI /
ANLI) and "yesno" (StrategyQA). `normalize_answer` gives an answer's canonical form for its
family. `parse_answer` reads the student's trained format only, the last `#### <answer>` line
(what lm-evaluation-harness's GSM8K "strict-match" filter reads); it never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

ANSWER_MARK = "####"
FAMILIES = ("number", "option", "label", "yesno")
NLI_LABELS = ("entailment", "neutral", "contradiction")
OPTION_LETTERS = "ABCDE"

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


@dataclass(frozen=True)
class ParsedAnswer:
    """answer: normalised answer or None; status: ok | no_answer | unparsable."""

    answer: str | None
    status: str
    raw: str | None = None


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
    """Read the final answer from the last `#### <answer>` occurrence of `text` (the student's
    trained format; the "strict" reading of lm-evaluation-harness's GSM8K task).

    Returns ParsedAnswer(answer, status): status 'no_answer' when there is no `####`,
    'unparsable' when the text after it cannot be normalised. Never raises.
    """
    if not isinstance(text, str):
        return ParsedAnswer(None, "no_answer")
    idx = text.rfind(ANSWER_MARK)
    if idx < 0:
        return ParsedAnswer(None, "no_answer")
    raw = text[idx + len(ANSWER_MARK):].strip().split("\n", 1)[0].strip()
    try:
        answer = normalize_answer(raw, family) if raw else None
    except ValueError:
        answer = None
    return ParsedAnswer(answer, "ok" if answer is not None else "unparsable", raw)
