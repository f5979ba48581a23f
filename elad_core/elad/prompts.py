"""Every prompt the project sends, in one place, with a version that is part of cache keys.

Student format (the student is trained on it): `Question: <q>\nAnswer:\n<steps>\n#### <a>`.
Teacher prompts: CoT from scratch, the CLEAR revision dialogue (ELAD, docs/design.md §2.3) and
`clear_single`, our one-call variant (all student steps numbered, JSON reply).
Changing any text here must bump PROMPT_VERSION so cached teacher results are not reused.
"""

from __future__ import annotations

import re

PROMPT_VERSION = "v1"

ANSWER_CUE = "#### "


# ---------------------------------------------------------------- student
def student_prompt(question: str) -> str:
    """The text the student continues: its explanation starts right after it."""
    return f"Question: {question.strip()}\nAnswer:\n"


def student_target(steps: str, answer: str) -> str:
    """Training target after the prompt: steps, one per line, then `#### answer`."""
    steps = steps.strip()
    return f"{steps}\n{ANSWER_CUE}{answer}" if steps else f"{ANSWER_CUE}{answer}"


def probe_prompt(question: str, steps: list[str]) -> str:
    """EGSS probe (docs/design.md §2.2): question + the first i steps + the answer cue `#### `."""
    body = "".join(f"{s}\n" for s in steps)
    return f"{student_prompt(question)}{body}{ANSWER_CUE}"


# ---------------------------------------------------------------- teacher
TEACHER_SYSTEM = (
    "You are an expert teacher. You write clear step-by-step solutions with one step per line "
    "and end every solution with a last line of the form '#### <answer>'."
)

COT_USER = (
    "Solve the question step by step. Write one step per line and finish with a last line "
    "'#### <answer>'.\n\nQuestion: {question}"
)

CLEAR_INSTRUCTIONS = (
    "If yes, reply 'Yes.' and then give me your version of this step on one line. "
    "If no, reply 'No.' and then give me the rest of the steps, one per line, and a last line "
    "'#### <answer>'."
)

CLEAR_FIRST = (
    "For question: {question}\nLet's think step by step. Can we start with this step: {step}\n"
    + CLEAR_INSTRUCTIONS
)

CLEAR_NEXT = "Can we continue with this step: {step}\n" + CLEAR_INSTRUCTIONS

# Label tasks (option / label / yes-no): the student's own final answer goes with turn 1 of
# `clear` and with `clear_single`, so the teacher can judge the reasoning that leads to it
# (docs/design.md §2.4 judges label-task steps by that answer). Number tasks do not send it.
STUDENT_ANSWER = "\nThe student's final answer is: {answer}"

CLEAR_FINAL = (
    "All the steps are accepted. What is the final answer? Reply with a last line '#### <answer>'."
)

CLEAR_SINGLE = (
    "For question: {question}\nLet's think step by step. A student wrote these steps:\n{steps}{answer}\n"
    "Find the first wrong step. Reply with JSON only, of the form "
    '{{"first_wrong_step": <its number, or null if every step is right>, '
    '"steps": [<your steps from that one to the end, one string each>], '
    '"answer": "<the final answer>"}}'
)

_QUESTION_RES = (
    re.compile(r"For question: (.*?)\nLet's think step by step\.", re.S),
    re.compile(r"\n\nQuestion: (.*)$", re.S),
)


def cot_messages(question: str) -> list[dict[str, str]]:
    """Chat messages of a CoT annotation (docs/design.md §2.3 `cot`)."""
    return [
        {"role": "system", "content": TEACHER_SYSTEM},
        {"role": "user", "content": COT_USER.format(question=question.strip())},
    ]


def _student_answer(answer: str | None) -> str:
    return STUDENT_ANSWER.format(answer=answer) if answer else ""


def clear_first_message(question: str, step: str, student_answer: str | None = None) -> dict[str, str]:
    """Turn 1 of the CLEAR dialogue (ELAD §3.2, docs/design.md §2.3); student_answer: label tasks only."""
    text = CLEAR_FIRST.format(question=question.strip(), step=step) + _student_answer(student_answer)
    return {"role": "user", "content": text}


def clear_single_messages(question: str, steps: list[str],
                          student_answer: str | None = None) -> list[dict[str, str]]:
    """The one call of `clear_single` (docs/design.md §2.3): the student's steps numbered from 1."""
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    text = CLEAR_SINGLE.format(question=question.strip(), steps=numbered,
                               answer=_student_answer(student_answer))
    return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": text}]


def clear_next_message(step: str) -> dict[str, str]:
    """A following CLEAR turn proposing the next student step."""
    return {"role": "user", "content": CLEAR_NEXT.format(step=step)}


def clear_final_message() -> dict[str, str]:
    """Asked once when the teacher accepted every step."""
    return {"role": "user", "content": CLEAR_FINAL}


def question_of(message_text: str) -> str | None:
    """The question embedded in a CoT or CLEAR first message (used by the oracle teacher)."""
    for pattern in _QUESTION_RES:
        m = pattern.search(message_text)
        if m:
            return m.group(1).strip()
    return None


def student_answer_of(message_text: str) -> str | None:
    """The student's final answer sent with a label-task CLEAR / clear_single message, or None."""
    m = re.search(r"\nThe student's final answer is: (.*?)(?:\n|$)", message_text)
    return m.group(1).strip() if m else None


def clear_single_steps(message_text: str) -> list[str] | None:
    """The numbered student steps of a clear_single message (None for other messages)."""
    m = re.search(r"A student wrote these steps:\n(.*?)\n(?:The student's final answer|Find the first)",
                  message_text, re.S)
    if m is None:
        return None
    return [re.sub(r"^\d+\.\s?", "", line) for line in m.group(1).split("\n") if line.strip()]


def proposed_step(message_text: str) -> str | None:
    """The student step proposed in a CLEAR turn, or None for other messages."""
    m = re.search(r"Can we (?:start|continue) with this step: (.*?)\nIf yes,", message_text, re.S)
    return m.group(1).strip() if m else None


# Text that shows the tokenizer of the embedded student the answer format (no gold data):
# the prompt frame, the answer mark and GSM8K's calculation annotations.
FORMAT_TEXTS = [
    student_prompt("What is 12 + 34?") + "12 + 34 = <<12+34=46>>46\n" + ANSWER_CUE + "46",
    "<<3*4=12>>12 <<10-7=3>>3 <<8/2=4>>4 $5.50 1,000 50% 0.25",
] * 20
