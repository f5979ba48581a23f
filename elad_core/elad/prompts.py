"""ELAD's teacher prompts, with a version that is part of cache keys.

Teacher prompts: CoT from scratch, the CLEAR revision (ELAD, docs/design.md §2.3; since v2 one
stateless request per chunk of student steps), `clear_single`, our one-call variant (all student
steps numbered, JSON reply), and the answer turn's triggers (Kojima et al. 2022).
Changing any text here, or the student format they quote (`elad_core.explanations.prompt`),
must bump PROMPT_VERSION so cached teacher results are not reused.
"""

from __future__ import annotations

import re

PROMPT_VERSION = "v2"  # v2: CLEAR judges chunks of steps in stateless turns; answer turn

# ---------------------------------------------------------------- teacher
TEACHER_SYSTEM = (
    "You are an expert teacher. You write clear step-by-step solutions with one step per line "
    "and end every solution with a last line of the form '#### <answer>'."
)

COT_USER = (
    "Solve the question step by step. Write one step per line and finish with a last line "
    "'#### <answer>'.\n\nQuestion: {question}"
)

# The paper's one-step-per-turn dialogue (prompt v1): no longer sent by the annotators (see
# CLEAR_CHUNK); the oracle teacher still answers it.
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

# CLEAR as sent since v2 (docs/design.md §2.3): each turn is ONE stateless user message
# (question + the steps the teacher accepted so far + the next chunk of student steps, numbered
# globally), not the whole dialogue resent. The teacher judges the chunk's steps in order, one
# verdict line per step ("Step n: Yes. <its version>") up to the first wrong one ("Step n: No."
# + the rest of the solution). The last chunk also asks it to finish the solution.
CLEAR_CHUNK = (
    "For question: {question}\nLet's think step by step.{accepted}\nA student's next steps:\n"
    "{steps}\nJudge them in order. While a step is right, write 'Step <n>: Yes.' and your "
    "version of it on one line. At the first wrong step, write 'Step <n>: No.', then the rest "
    "of the solution, one step per line, ending with '#### <answer>'.{end}"
)
CLEAR_ACCEPTED = "\nThese steps are right:\n{steps}"
CLEAR_END_MORE = " If all are right, stop there."
CLEAR_END_LAST = " If all are right, finish the solution, ending with '#### <answer>'."
# the closing turn when every judged step was accepted but no answer came back
CLEAR_FINISH = (
    "For question: {question}\nLet's think step by step.\nThese steps are right:\n{steps}\n"
    "Finish the solution, one step per line, ending with '#### <answer>'."
)
STEP_LINE = "Step {n}: {step}"

# The answer turn (Kojima et al. 2022, zero-shot CoT, stage 2): a reply from which no rule reads
# an answer goes back once, as the assistant's message, followed by this trigger (their
# answer-extraction prompts, per answer family).
ANSWER_TRIGGERS = {
    "number": "Therefore, the final answer (arabic numerals) is",
    "option": "Therefore, among A through E, the final answer is",
    "label": "Therefore, the final answer (entailment, neutral or contradiction) is",
    "yesno": "Therefore, the final answer (Yes or No) is",
}

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


def _step_lines(steps: list[str], first: int = 1) -> str:
    return "\n".join(STEP_LINE.format(n=n, step=s) for n, s in enumerate(steps, first))


def clear_chunk_messages(question: str, accepted: list[str], steps: list[str], last: bool,
                         student_answer: str | None = None) -> list[dict[str, str]]:
    """One stateless CLEAR turn (docs/design.md §2.3): the steps accepted so far (the teacher's
    versions), then the next chunk of student steps numbered on from them; `last`: no student
    step follows this chunk, so the teacher finishes the solution if all are right."""
    done = CLEAR_ACCEPTED.format(steps=_step_lines(accepted)) if accepted else ""
    text = CLEAR_CHUNK.format(question=question.strip(), accepted=done,
                              steps=_step_lines(steps, len(accepted) + 1),
                              end=CLEAR_END_LAST if last else CLEAR_END_MORE)
    return [{"role": "system", "content": TEACHER_SYSTEM},
            {"role": "user", "content": text + _student_answer(student_answer)}]


def clear_finish_messages(question: str, accepted: list[str],
                          student_answer: str | None = None) -> list[dict[str, str]]:
    """The closing CLEAR turn: every judged step was accepted and no answer came back yet."""
    text = CLEAR_FINISH.format(question=question.strip(), steps=_step_lines(accepted))
    return [{"role": "system", "content": TEACHER_SYSTEM},
            {"role": "user", "content": text + _student_answer(student_answer)}]


def answer_trigger(family: str) -> str:
    """The answer turn's trigger for an answer family (number, option, label, yesno)."""
    return ANSWER_TRIGGERS.get(family, ANSWER_TRIGGERS["number"])


def answer_turn_messages(messages: list[dict], reply: str, family: str) -> list[dict[str, str]]:
    """The answer turn: the conversation, the reply as the assistant's message, the trigger."""
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": answer_trigger(family)}]


def is_answer_trigger(message_text: str) -> bool:
    """True for the user message of an answer turn (used by the oracle teacher)."""
    return message_text.strip() in ANSWER_TRIGGERS.values()


_CHUNK_RE = re.compile(
    r"\nLet's think step by step\.(?:\nThese steps are right:\n(?P<accepted>.*?))?"
    r"\nA student's next steps:\n(?P<steps>.*?)\nJudge them in order\. ", re.S)
_FINISH_RE = re.compile(r"\nLet's think step by step\.\nThese steps are right:\n(?P<accepted>.*?)"
                        r"\nFinish the solution, ", re.S)


def _unnumbered(block: str | None) -> list[str]:
    return [re.sub(r"^Step \d+: ", "", line) for line in (block or "").split("\n") if line.strip()]


def clear_chunk_of(message_text: str) -> tuple[list[str], list[str], bool] | None:
    """(accepted steps, proposed steps, last) of a CLEAR chunk message; None for others."""
    m = _CHUNK_RE.search(message_text)
    if m is None:
        return None
    return (_unnumbered(m.group("accepted")), _unnumbered(m.group("steps")),
            CLEAR_END_LAST in message_text)


def clear_finish_of(message_text: str) -> list[str] | None:
    """The accepted steps of a CLEAR finishing message; None for others."""
    m = _FINISH_RE.search(message_text)
    return _unnumbered(m.group("accepted")) if m else None


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
