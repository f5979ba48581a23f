"""Answer statements: the phrases that announce an answer ("the answer ... is N", "the correct
option is (C)", "Answer: N", "**Final Answer:**"), the answer read after them
(`read_statement`), and `is_answer_line` (a line that only states a final answer).
docs/design.md §2.1 and §2.3 (teacher replies).
"""

from __future__ import annotations

import re

from elad_core.explanations.answers.candidates import cut_first, option_candidates
from elad_core.explanations.answers.families import ANSWER_MARK
from elad_core.explanations.answers.fragments import read_fragment
from elad_core.explanations.answers.markup import clean_markup

CONNECTIVE_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence|finally|overall|in\s+conclusion|in\s+summary|in\s+total|total|"
    r"that\s+means|this\s+means)\b[\s,:]*)+", re.IGNORECASE)
# "answer" (or option / choice / label ...), then ANY few words or a parenthetical ("to this
# question", "(in dollars)", "to how many eggs she sells"), then the verb; no sentence break
# and no clause of its own (a pronoun subject: "the answer we need is" is fine, "to find the
# answer we compute x, which is" is not: the gap holds no comma and at most 8 words)
_GAP = r"(?:\s*\([^()\n]{0,60}\))?(?:\s+(?!(?:is|was|would|will|should|must|=)\b)[^\s,.;:!?()=]+){0,8}?(?:\s*\([^()\n]{0,60}\))?"
_VERB = r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=)"
# the nouns that announce an answer, per family ("the correct option is (C)", "the relationship
# is neutral"); every family's answer can be announced as "the answer"
_ANSWER_NOUNS = {"number": "answer", "option": "answer|option|choice",
                 "label": "answer|label|relationship|relation", "yesno": "answer"}


def _answer_is_re(nouns: str) -> re.Pattern:
    return re.compile(
        rf"\b(?:(?:final|correct|right|best|true)\s+)?(?:{nouns})" + _GAP + r"\s+" + _VERB
        + r"(?![\w])(?:\s+(?:therefore|then|simply|clearly|actually))?\s*[:=]?\s*(?P<ans>.+)"
        r"|\b(?:final\s+)?answer\s*(?:\([^()\n]{0,60}\))?\s*(?:is\s*)?[:=]\s*(?P<ans2>.+)",
        re.IGNORECASE)


ANSWER_IS_RES = {family: _answer_is_re(nouns) for family, nouns in _ANSWER_NOUNS.items()}
_ANSWER_IS_RE = _answer_is_re("answer|option|choice|label|relationship|relation")
ANSWER_LABEL_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:[A-Za-z]+\s+){0,2}?(?:answer|ans|result|label|prediction)"
    r"\.?\s*(?:\([^)]*\))?"
    r"\s*[:=\-–—]\s*(?P<ans>.*)$", re.IGNORECASE)
ANSWER_HEADING_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:(?:final|correct)\s+)?(?:answer|ans|result|solution)\.?\s*[:\-–—]?$",
    re.IGNORECASE)


def overlapping(regex: re.Pattern, text: str, limit: int = 50) -> list[re.Match]:
    """Every match of `regex` starting at a different place ("The answer is: The answer is:
    (C)" holds two), the first `limit`."""
    out, pos = [], 0
    while len(out) < limit:
        m = regex.search(text, pos)
        if m is None:
            return out
        out.append(m)
        pos = m.start() + 1
    return out


def read_statement(fragment: str, family: str, options: dict[str, str]) -> str | None:
    """The answer an answer statement gives after its verb or colon: `read_fragment` (up to
    four prose words first), else, for options with the question's choices, the one option
    its first sentence names by its text ("The answer is dense forest." -> E)."""
    got = read_fragment(fragment, family, False, 4)
    if got is None and family == "option" and options:
        named = set(option_candidates(cut_first(fragment)[:200], options, by_text=True))
        got = named.pop() if len(named) == 1 else None
    return got


def is_answer_line(line: str, family: str = "number") -> bool:
    """True when a line only states a final answer ("#### 42", "**Answer:** 42", "\\boxed{42}",
    "So the final answer is $42$.", "42", "Final Answer:") and holds no reasoning."""
    try:
        raw = line.strip()
        if raw.startswith(ANSWER_MARK):
            return True
        cleaned = clean_markup(raw)
        if not cleaned:
            return False
        if ANSWER_HEADING_RE.match(cleaned):
            return True
        body = CONNECTIVE_RE.sub("", cleaned)
        label = ANSWER_LABEL_RE.match(body)
        if label is not None:
            body = label.group("ans")
        else:
            m = ANSWER_IS_RES.get(family, _ANSWER_IS_RE).match(re.sub(r"^(?:the|my|our)\s+", "", body, flags=re.IGNORECASE))
            if m is not None:
                body = m.group("ans") or m.group("ans2") or ""
        return read_fragment(body, family, pure=True, split_equals=False) is not None
    except Exception:  # noqa: BLE001
        return False
