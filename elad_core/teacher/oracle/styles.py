"""How the oracle writes a full solution (docs/design.md §2.4): as our protocol asks
(`oracle`: steps then `#### N`), as real models do (`real`), or with no answer at all
(`no_answer`). A test double's knob: `teacher.oracle.reply_style`.

`real` rotates, per question, through the layouts real chat models use when they ignore the
`####` protocol: a prose chain of thought ending "The answer is N.", a markdown list with
"**Answer:** N", LaTeX ending "$\\boxed{N}$", and "Final answer: N" after a chatty opener.
The parsing contract for them is tests/fixtures/teacher_replies/replies.jsonl; this style
exists so a whole run can meet such a teacher offline. `no_answer` is a teacher whose
replies hold steps but never state an answer (a truncating endpoint, a wrong model): every
reply is unusable, which is what `teacher.min_usable_fraction` stops.
"""

from __future__ import annotations

import hashlib

STYLES = ("oracle", "real", "no_answer")


def write_solution(steps: list[str], answer: str, question_id: str, style: str) -> str:
    """A full solution of `steps` (gold, one per item) and `answer` in `style`."""
    if style == "oracle":  # (the judge writes this one with prompts.student_target)
        return "\n".join([*steps, f"#### {answer}"])
    if style == "no_answer":
        # cut off before the answer (a truncating endpoint): even lm-eval's flexible reading
        # of the last number would take an intermediate result, so the reader takes none
        return "Let me work through this.\n" + "\n".join(steps) + "\nPutting it together, the total is"
    if style != "real":
        raise ValueError(f"unknown oracle reply style {style!r}; choose one of {STYLES}")
    layout = int(hashlib.sha1(question_id.encode()).hexdigest(), 16) % 4
    if layout == 0:
        return "Let's think step by step. " + " ".join(steps) + f" The answer is {answer}."
    if layout == 1:
        body = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start=1))
        return f"**Solution**\n\n{body}\n\n**Answer:** {answer}"
    if layout == 2:
        return "\n\n".join(steps) + f"\n\nTherefore, the final answer is $\\boxed{{{answer}}}$."
    return ("Sure! Here's how I'd solve it.\n\n" + "\n".join(f"- {s}" for s in steps)
            + f"\n\nFinal answer: {answer}")
