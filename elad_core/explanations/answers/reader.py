"""The answer reader's entry points: `find_answer` (where a reply's answer is read),
`extract_answer` (the answer and the rule that read it) and `flexible_answer` (a student's
explanation read the lm-evaluation-harness "flexible-extract" way). The strict rules first, the
statement nearest the end of the reply winning, then the flexible rule. They never raise.

docs/design.md §2.1 (answers, families) and §2.3 (teacher replies); the contract is
`extract_answer`'s docstring.
"""

from __future__ import annotations

from elad_core.explanations.answers.candidates import question_options
from elad_core.explanations.answers.families import FAMILIES
from elad_core.explanations.answers.flexible import rule_flexible
from elad_core.explanations.answers.lines import (
    MAX_LINE_CHARS,
    MAX_REPLY_CHARS,
    AnswerSpan,
    echo_lines,
    line_starts,
)
from elad_core.explanations.answers.strict import (
    STRICT_RULES,
    rule_boxed,
    rule_hash,
    rule_last_line,
    rule_phrases,
)

ANSWER_RULES = (*STRICT_RULES, "flexible")


def find_answer(text: object, family: str = "number", question: str | None = None,
                flexible: bool = True) -> AnswerSpan | None:
    """Where `extract_answer` reads its answer (AnswerSpan), or None. Never raises."""
    try:
        return _find(text, family, question, flexible)
    except Exception:  # noqa: BLE001 - a parser of untrusted text must never raise
        return None


_RANK = {rule: i for i, rule in enumerate(ANSWER_RULES)}


def _find(text: object, family: str, question: str | None, flexible: bool) -> AnswerSpan | None:
    if not isinstance(text, str) or not text.strip() or family not in FAMILIES:
        return None
    if len(text) > MAX_REPLY_CHARS:
        text = text[-MAX_REPLY_CHARS:]
    lines = text.splitlines()
    # a line longer than MAX_LINE_CHARS is read from its end; starts[i] is the text offset
    # of what is left of line i
    starts = [s + max(0, len(line) - MAX_LINE_CHARS) for s, line in zip(line_starts(text), lines)]
    lines = [line[-MAX_LINE_CHARS:] for line in lines]
    skip = echo_lines(lines)
    options = question_options(question) if family == "option" else {}
    found = []
    for rule in (lambda: rule_hash(lines, starts, family, skip),
                 lambda: rule_boxed(text, starts, family, skip),
                 lambda: rule_phrases(lines, starts, family, skip, options),
                 lambda: rule_last_line(lines, starts, family, skip)):
        try:
            got = rule()
        except Exception:  # noqa: BLE001
            got = None
        if got is not None:
            found.append(got)
    if found:  # the statement nearest the end wins; on one line, the rule listed first
        return max(found, key=lambda f: (f.line, -_RANK[f.rule]))
    if not flexible:
        return None
    try:
        return rule_flexible(lines, starts, family, skip, question)
    except Exception:  # noqa: BLE001
        return None


def extract_answer(text: str | None, family: str = "number", *,
                   question: str | None = None) -> tuple[str | None, str | None]:
    """Read the final answer a reply states, whatever its layout. Never raises.

    Source: docs/design.md §2.1 (answers, families) and §2.3 (teacher replies); the flexible
    rule follows lm-evaluation-harness's GSM8K `flexible-extract` filter and the Qwen2.5-Math
    evaluator. `text`: one reply (any string; None, empty, non-str, huge or binary input gives
    (None, None)); `family`: one of FAMILIES; `question`: the question the reply answers
    (optional, keyword): it keeps the flexible rule from reading a number copied from the
    question and lets it read an option by its text.

    Markdown and LaTeX wrappers are stripped first (`clean_markup`). Protocol echoes are not
    answers: placeholders (`<answer>`, `[answer]`, `<number>`, `(<letter>)`) and runs of
    enumerating `####` lines (`#### <answer>` then `#### 1`, `#### 2`, ...).

    Strict rules; when several read an answer, the statement nearest the end of the reply wins
    (on one line: in this order):

    1. `hash`: a `#### N` line (a numbered markdown heading `#### 1. Step` is skipped).
    2. `boxed`: `\\boxed{N}` (nested braces such as `\\boxed{\\frac{1}{2}}` handled).
    3. `answer_is`: "answer" (or option / choice / label), any few words or a parenthetical,
       then is / was / would be / =: "The answer to this question is 42", "the final answer
       (in dollars) is $42.", "The correct option is (C)". The answer starts the text after
       the verb (up to four words may come first: "is that she has 42 apples").
       Also "the answer: N" anywhere ("we get the answer: 1600"). With the question's
       choices, an option named by its text ("The answer is dense forest." -> E).
       `answer_label`: "Answer: N" / "**Final Answer:** N" / "Updated answer: N" (a sentence
       opening with at most two words and "answer:"), or "Answer:" alone on a line followed
       by a line that is only an answer. A statement whose answer names two or more answers
       ("the answer is both a contradiction and an entailment", "(C) (D) ... (E)") is a hedge:
       not read. After `=` the value after the last `=` is read, unless it is an expression
       still to be worked out ("= 3 * 4").
    4. `last_line`: the last line (closing remarks passed over) if it is only an answer ("42",
       "**$1,200**", "42 apples", "(B)", "Entailment.", "Yes.").

    Then, only when no strict rule reads an answer, `flexible`: the last candidate of the family
    in the reply's FINAL STATEMENT (lm-eval's flexible-extract takes the last number of the
    whole reply; the Qwen2.5-Math evaluator the last number of the prediction). The reply is
    split into sentences; closing remarks ("I hope this helps!", "Let me know if ...") and
    questions at its end are passed over; the final statement is the last sentence that gives a
    candidate, with at most one sentence without one after it ("This is the answer to the
    question.", a restatement of the question's data). Candidates:

    - number: every number (lm-eval's `(-?[$0-9.,]{2,})|(-?[0-9]+)` idea) except step
      markers ("Step 2:", "3.") and operands of an expression ("(2+32)", the 14 and 6 of
      "14 + 6 = 20"; the result after `=` counts), LESS the numbers copied from `question`: a
      number of the question counts only as an `= N` result. So "So, it costs $1200 if you pay
      $40 for a sub" gives 1200, and "Janet has 16 eggs." (16 from the question) gives
      nothing: a statement whose only numbers are the question's restates the data;
    - option: "(C)", "[C]", "C)", "option C", "answer: C", a statement that is only "C.", not
      negated or rejected ("not (B)", "(C) ... is not applicable"); when no statement gives a
      letter, an option named by its text (the question's "(A) bank ...");
    - label: entailment / neutral / contradiction said OF something ("this is a contradiction",
      "the hypothesis is neutral": after is / are / be ...), or entails / contradicts; not
      negated ("does not entail", "not necessarily entailment", "unlikely to entail");
    - yesno: an answer-shaped yes / no ("No, ...", "So, yes, ...", "the answer would be no",
      "Answer: yes"); any statement may give it (the answer-first layout "No, because ...
      [reasons]"), the last one wins.

    When no statement near the end gives one, an option or label reply may still state it
    first: a first line that is only an answer ("(A) (1,1)", then an explanation).

    No flexible answer when the reply did not conclude: its last line is not closed (no full
    stop, bracket or closing markup: a reply stopped at its token limit; "2 *" is an operator,
    "**18**" markup), it ends on a bare list marker ("2.") or on an expression still to be
    worked out ("which is 1.1 * 1."), or its last sentence announces more work without working
    it out ("Let's ...", "Next, we ...", "To find ..., we ...", "We need ..."). Nor when the
    final statement hedges between answers (two or more options or labels: "(C) or (D)",
    "both a contradiction and an entailment"), copies the choices (all three labels, "yes or
    no"), holds an answer statement whose answer is none of the family ("... the answer is
    infinity."), or, for labels, is a conditional ("If the premise entails ...").

    Returns (answer, rule): the normalised answer (`normalize_answer`) and the rule's name
    from ANSWER_RULES, or (None, None).
    """
    found = find_answer(text, family, question)
    return (found.answer, found.rule) if found else (None, None)


def flexible_answer(text: str | None, family: str = "number",
                    question: str | None = None) -> str | None:
    """The answer of a STUDENT's explanation read the lm-evaluation-harness "flexible-extract"
    way: the full reply reader, flexible rule included (`extract_answer`). The strict reading
    (the `#### N` line only) is `parse_answer`. Normalised answer or None; never raises."""
    return extract_answer(text, family, question=question)[0]
