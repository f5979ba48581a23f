"""The flexible rule, read only when no strict rule reads an answer: the last candidate of the
family in the reply's final statement, in the manner of lm-evaluation-harness's GSM8K
"flexible-extract" filter (regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match) and of the
Qwen2.5-Math evaluator (last number of the prediction), never one copied from the question.
No answer when the reply did not conclude (cut off, or announcing more work) or when its final
statement hedges. docs/design.md §2.1 and §2.3; the contract is `reader.extract_answer`'s.
"""

from __future__ import annotations

import re

from elad_core.explanations.answers.candidates import (
    is_closer,
    label_candidates,
    number_candidates,
    option_candidates,
    question_numbers,
    question_options,
    split_sentences,
    yesno_candidates,
)
from elad_core.explanations.answers.fragments import read_fragment
from elad_core.explanations.answers.lines import (
    HAS_WORD_RE,
    MAX_LINES,
    AnswerSpan,
    content_lines_backwards,
    strip_placeholders,
)
from elad_core.explanations.answers.markup import clean_markup
from elad_core.explanations.answers.phrases import (
    ANSWER_IS_RES,
    overlapping,
    read_statement,
)

# a sentence that announces work still to do, not a result
_FORWARD_RE = re.compile(
    r"^\W*(?:(?:now|next|first|then|finally|so)\b[\s,]*)?(?:let'?s|let\s+(?:us|me)|next\b|"
    r"to\s+(?:find|calculate|compute|determine|solve|get|work\s+out|figure\s+out)\b|"
    r"we\s+(?:need|can|will|must|have\s+to|should|are\s+going\s+to)\b|i\s+will\b|i'?ll\b|"
    r"i\s+need\b)", re.IGNORECASE)


# a reply's last line is closed when it ends a sentence (. ! ?) or closes markup / a bracket
# / a quote (`**$18**`, `$\boxed{18}$`, `(B)`); a reply stopped at its token limit mostly is not
_CLOSED_RE = re.compile(r"(?:[.!?)\]}\"'”’$]|\S\*+)\s*$")  # "**18**" closes, "2 *" does not


# a statement that ends on an expression still to be worked out: "... which is 1.1 * 1."
_OPEN_EXPRESSION_RE = re.compile(r"(?:[*×÷+]|\s[/-])\s*[-$€£]?\d[\d,]*(?:\.\d+)?\s*%?\s*[.!]?\s*$")


def _closed(line: str) -> bool:
    if re.fullmatch(r"\s*(?:\d{1,2}[.)]|[-*•])\s*", line):
        return False  # cut off right after a list marker ("2.")
    return bool(_CLOSED_RE.search(line.rstrip())) and not _OPEN_EXPRESSION_RE.search(
        clean_markup(line))


def _states_no_answer(sentence: str, family: str, options: dict[str, str]) -> bool:
    """True when a sentence holds an answer statement ("the answer is ...") whose answer is not
    one of the family ("the answer is infinity", "the answer is yester day ...")."""
    matches = overlapping(ANSWER_IS_RES[family], sentence, limit=5)
    return bool(matches) and all(
        read_statement(m.group("ans") or m.group("ans2") or "", family, options) is None
        for m in matches)


def rule_flexible(lines: list[str], starts: list[int], family: str, skip: set[int],
                  question: str | None) -> AnswerSpan | None:
    """The last candidate of the family in the reply's final statement (see extract_answer)."""
    qnums = question_numbers(question) if family == "number" else set()
    options = question_options(question) if family == "option" else {}
    read = {"number": lambda s: number_candidates(s, qnums),
            "option": lambda s: option_candidates(s, options),
            "label": label_candidates, "yesno": yesno_candidates}[family]
    # statements from the end: (line index, sentence), closing remarks and questions dropped
    statements: list[tuple[int, str]] = []
    closed = None  # whether the reply's last line with content is closed
    for idx in content_lines_backwards(lines, skip):
        if closed is None:
            closed = _closed(lines[idx])
        cleaned = clean_markup(strip_placeholders(lines[idx]))
        for sentence in reversed(split_sentences(cleaned)):
            if not statements and is_closer(sentence):
                closed = True  # a closing remark ends the reply: it was not cut off
                continue
            statements.append((idx, sentence))
        if len(statements) > 40:
            break
    if not statements or not closed:
        return None  # nothing said, or the reply was cut off: its last sentence is unfinished
    if _FORWARD_RE.match(statements[0][1]) and "=" not in statements[0][1]:
        return None  # the reply ends announcing more work ("Let's ...", "Next, we ..."): unfinished
    # the final statement: the last one that gives a candidate; one remark without a candidate
    # may follow it ("This is the answer to the question.", a restatement of the question's
    # data). A yes/no answer usually opens the reply ("No, because ..."): for that family any
    # statement may give it, the last one that does wins.
    reach = len(statements) if family == "yesno" else 2
    passes = [read]
    if options:  # an option named by its text only when no statement gives a letter
        passes.append(lambda s: option_candidates(s, options, by_text=True))
    for read_one in passes:
        for idx, sentence in statements[:reach]:
            found = read_one(sentence)
            if found:
                if family != "number" and len(set(found)) >= 2:
                    return None  # a hedge between several answers states none
                if _states_no_answer(sentence, family, options):
                    return None  # "8 is a problem ..., the answer is infinity": its own answer
                return AnswerSpan(found[-1], "flexible", idx, starts[idx])
    if family in ("option", "label"):
        # the answer-first layout: a first line that is only an answer ("(A) (1,1)",
        # "Entailment."), then the explanation, which names no answer of its own
        first = next((i for i, line in enumerate(lines[:MAX_LINES])
                      if i not in skip and HAS_WORD_RE.search(clean_markup(line))), None)
        if first is not None:
            got = read_fragment(clean_markup(lines[first]), family, pure=True, split_equals=False)
            if got is not None:
                return AnswerSpan(got, "flexible", first, starts[first])
    return None
