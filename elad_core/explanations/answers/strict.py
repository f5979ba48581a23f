"""The strict rules (STRICT_RULES): an explicit answer statement, each rule reading the last one
of its kind (docs/design.md §2.3, teacher replies):

- `hash`: a `#### N` line (a numbered markdown heading `#### 1. Step` is skipped);
- `boxed`: `\\boxed{N}` (nested braces handled);
- `answer_is` and `answer_label`: "the answer ... is N", "Answer: N" (`rule_phrases`);
- `last_line`: a last line that is only an answer.

`reader.find_answer` runs them all: the statement nearest the end of the reply wins.
"""

from __future__ import annotations

import re

from elad_core.explanations.answers.candidates import hedged, is_closer, split_sentences
from elad_core.explanations.answers.families import ANSWER_MARK
from elad_core.explanations.answers.fragments import read_fragment
from elad_core.explanations.answers.lines import (
    MAX_LINES,
    AnswerSpan,
    content_lines_backwards,
    line_of,
    strip_placeholders,
)
from elad_core.explanations.answers.markup import braced, clean_markup
from elad_core.explanations.answers.phrases import (
    ANSWER_HEADING_RE,
    ANSWER_IS_RES,
    ANSWER_LABEL_RE,
    CONNECTIVE_RE,
    overlapping,
    read_statement,
)

STRICT_RULES = ("hash", "boxed", "answer_is", "answer_label", "last_line")

_NUMBERED_HEADING_RE = re.compile(r"^\s*####\s+(?:step\s+)?\d+[.):]\s+[A-Za-z]", re.IGNORECASE)
_HASH_TAG_RE = re.compile(r"^(?:\[[^\]\n]{0,30}\]|[A-Za-z][A-Za-z ]{0,20})\s*:\s*(?=\S)")


def rule_hash(lines: list[str], starts: list[int], family: str, skip: set[int]) -> AnswerSpan | None:
    for idx in range(len(lines) - 1, max(len(lines) - MAX_LINES, 0) - 1, -1):
        line = lines[idx]
        if idx in skip or ANSWER_MARK not in line or _NUMBERED_HEADING_RE.match(line):
            continue
        col = line.rfind(ANSWER_MARK)
        content = clean_markup(strip_placeholders(line[col + len(ANSWER_MARK):].lstrip("#")))
        for _ in range(2):  # "#### [simplify]: 0.75", "#### simplify: Answer: 0.75"
            content = _HASH_TAG_RE.sub("", content, count=1)
        phrase = ANSWER_IS_RES[family].search(content)
        got = (read_fragment(content, family, pure=True)
               or (read_fragment(phrase.group("ans") or phrase.group("ans2"), family, False, 4)
                   if phrase else None)
               or read_fragment(content, family, pure=False))
        if got is not None:
            return AnswerSpan(got, "hash", idx, starts[idx] + col)
    return None


def rule_boxed(text: str, starts: list[int], family: str, skip: set[int]) -> AnswerSpan | None:
    found = [m.start() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for pos in reversed(found[-20:]):  # the last few: a reply's final answer is near its end
        got = braced(text, text.index("{", pos))
        if got is None or line_of(starts, pos) in skip:
            continue
        content = clean_markup(strip_placeholders(got[0]))
        answer = (read_fragment(content, family, pure=True)
                  or read_fragment(content, family, pure=False))
        if answer is not None:
            return AnswerSpan(answer, "boxed", line_of(starts, pos), pos)
    return None


def rule_phrases(lines: list[str], starts: list[int], family: str, skip: set[int],
                 options: dict[str, str] | None = None) -> AnswerSpan | None:
    """answer_is ("the final answer (in dollars) is N") and answer_label ("Answer: N", also after
    a sentence on the same line), the later one wins; "Answer:" alone on a line is read from the
    next non-empty line."""
    options = options or {}
    nxt: str | None = None  # the next non-empty cleaned line below idx
    for idx in range(len(lines) - 1, max(len(lines) - MAX_LINES, 0) - 1, -1):
        if idx in skip:
            continue
        cleaned = clean_markup(strip_placeholders(lines[idx])) if lines[idx].strip() else ""
        if not cleaned:
            continue
        best: AnswerSpan | None = None
        sentences = split_sentences(cleaned) or [cleaned]
        for k, sentence in enumerate(reversed(sentences)):
            body = CONNECTIVE_RE.sub("", sentence)
            label = ANSWER_LABEL_RE.match(body)
            if label is not None and label.group("ans").strip():
                ans = label.group("ans")
                got = read_statement(ans, family, options)
                if got is not None and not hedged(ans, family):
                    best = AnswerSpan(got, "answer_label", idx, starts[idx])
                    break
            elif k == 0 and nxt is not None and ANSWER_HEADING_RE.match(body):
                got = read_fragment(nxt, family, pure=True)  # "**Answer:**\n42" / "Answer:\n- (B)"
                if got is not None:
                    best = AnswerSpan(got, "answer_label", idx, starts[idx])
                    break
        for m in reversed(overlapping(ANSWER_IS_RES[family], cleaned)):
            fragment = m.group("ans") or m.group("ans2") or ""
            got = read_statement(fragment, family, options)
            if got is not None and hedged(fragment, family):
                break  # "the answer is both a contradiction and an entailment": no single one
            if got is not None:
                if best is None:
                    best = AnswerSpan(got, "answer_is", idx, starts[idx] + m.start())
                break
        if best is not None:
            return best
        nxt = cleaned
    return None


_OPTION_LINE_RE = re.compile(r"^\(?([A-E])[).:]\s")


def rule_last_line(lines: list[str], starts: list[int], family: str,
                   skip: set[int]) -> AnswerSpan | None:
    found: AnswerSpan | None = None
    for idx in content_lines_backwards(lines, skip):
        cleaned = clean_markup(lines[idx])
        if is_closer(cleaned):
            continue
        got = read_fragment(cleaned, family, pure=True, split_equals=False)
        if got is None:
            return None
        found = AnswerSpan(got, "last_line", idx, starts[idx])
        break
    if found is None or family != "option":
        return found
    # an option line inside a listing of the choices ("A) harder", "B) anguish", ...) is not an
    # answer: another option letter opens a line of the same paragraph, just above
    for k in range(found.line - 1, max(found.line - 6, -1), -1):
        if not lines[k].strip():
            break
        above = _OPTION_LINE_RE.match(clean_markup(lines[k]))
        if above and above.group(1) != found.answer:
            return None
    return found
