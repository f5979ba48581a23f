"""Steps of an explanation, and a teacher's solution rebuilt in the student's format.

Never raises: a miss is recorded as a status.

docs/design.md §2.1: steps are the non-empty lines of an explanation; the final answer is read
from a closing `#### <answer>` line and normalised per answer family. Teacher replies, which
real models write in many layouts, are rebuilt in the student's format by `teacher_solution`
(§2.3). Reading the final answer itself is `elad_core.explanations.answers` (`parse_answer`,
`extract_answer`, `flexible_answer`, ...).
"""

from __future__ import annotations

import re

from elad_core.explanations.answers import (
    ANSWER_MARK,
    MAX_REPLY_CHARS,
    clean_markup,
    find_answer,
    is_answer_line,
    normalize_answer,
    normalize_number,
)

_HAS_WORD_RE = re.compile(r"\w")

_CALC_RE = re.compile(r"<<([^<>=]+)=([^<>]+)>>")


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


def teacher_solution(text: str | None, family: str = "number", *, question: str | None = None,
                     ) -> tuple[list[str], str | None, str | None]:
    """A teacher reply -> (reasoning steps, normalised answer or None, rule name or None).

    The training target is rebuilt in the student's format whatever the teacher's layout
    (docs/design.md §2.1): with the `hash` rule the steps are the lines before the `####`, as
    before; otherwise the lines up to the one the answer was read from, less any trailing
    lines that only state the answer ("**Answer:** 42", "\\boxed{42}", "Final Answer:", a lone
    `\\]`). Other lines are kept verbatim. The answer and rule are `extract_answer`'s (with the
    `flexible` rule the steps are the lines up to the final statement's line, that line
    included); `question` (optional) is passed on to it. Never raises.
    """
    if not isinstance(text, str):
        return [], None, None
    text = text[-MAX_REPLY_CHARS:]  # as find_answer reads it: its line / pos index this text
    found = find_answer(text, family, question)
    if found is None:
        return split_steps(text), None, None
    if found.rule == "hash":
        return split_steps(text[:found.pos]), found.answer, found.rule
    kept = [line for line in text.splitlines()[:found.line + 1]
            if line.strip() not in ("<think>", "</think>")]
    while kept and (not _HAS_WORD_RE.search(clean_markup(kept[-1]))
                    or is_answer_line(kept[-1], family)):
        kept.pop()  # a trailing answer line, `\]`, `---` or other bare markup
    return split_steps("\n".join(kept)), found.answer, found.rule
