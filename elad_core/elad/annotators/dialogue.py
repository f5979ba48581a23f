"""The request record and the teacher dialogue bookkeeping of the annotators (docs/design.md
§2.3): `AnnotationRequest` (one selected question); `Dialogue` (usage and raw replies over all
calls made for one question, and the Annotation record built from them); the reading of a
reply's solution (`read_solution`; `read_full_solution` for a reply that ignores the protocol:
PROTOCOL_IGNORED / NO_JSON); the student's answer shown to the teacher (`label_answer`); and the
answer turn (Kojima et al. 2022): a reply whose answer no explicit statement gives is sent back
once with an answer trigger when `answer_turn` is on (`Dialogue.solution`, `read_answer_turn`,
`resolve_answer_turn`, ANSWER_TURN_*).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from elad_core.elad import prompts

from elad_core.explanations.answers import STRICT_RULES, extract_answer
from elad_core.explanations.steps import split_steps, teacher_solution
from elad_core.explanations.records import Annotation
from elad_core.errors import PermanentTeacherError, sample_error
from elad_core.teacher.client import TeacherClient, TeacherReply


# A reply that ignores the yes/no protocol but holds a full solution (reasoning lines and an
# explicit final answer) is used as the rest of the solution: status ok, this note in `error`.
PROTOCOL_IGNORED = "protocol_ignored: no yes/no verdict; the reply's full solution was used"
NO_JSON = "protocol_ignored: no JSON object; the reply's full solution was used"
EXPLICIT_RULES = ("hash", "boxed", "answer_is", "answer_label")

# the answer turn (Kojima et al. 2022): the reply of at most this many tokens holds the answer
ANSWER_TURN_MAX_TOKENS = 24
ANSWER_TURN_RULE = "answer_turn"  # Annotation.answer_rule of an answer read from it


@dataclass(frozen=True)
class AnnotationRequest:
    """One selected question. explanation: the student sample CLEAR revises (None for CoT);
    sample_index: which of the K samples it is (recorded as Annotation.revised_sample);
    student_answer: that sample's parsed final answer (sent to the teacher for label tasks)."""

    question_id: str
    question: str
    explanation: str | None = None
    sample_index: int | None = None
    student_answer: str | None = None


class Dialogue:
    """Usage and raw replies accumulated over all calls made for one question.

    answer_turn: a reply from which no rule reads an answer is sent back once with an answer
    trigger (`answer_for`); `note` keeps why an answer turn failed, for the record's `error`.
    """

    def __init__(self, client: TeacherClient, answer_turn: bool = False):
        self.client = client
        self.answer_turn = answer_turn
        self.texts: list[str] = []
        self.prompt_tokens = self.completion_tokens = self.n_requests = 0
        self.cost_usd = 0.0
        self.note = ""

    async def ask(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        self.n_requests += 1
        if max_tokens is None:
            reply = await self.client.chat(messages)
        else:
            reply = await self.client.chat(messages, max_tokens=max_tokens)
        self.texts.append(reply.text)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost_usd += reply.cost_usd
        return reply

    async def solution(self, messages: list[dict], reply_text: str, text: str, family: str,
                       question: str | None) -> tuple[list[str], str | None, str | None]:
        """(steps, answer, rule) of `text`, the part of `reply_text` (the reply to `messages`)
        that closes the solution. When no explicit statement reads its answer (none, or only
        the flexible rule's guess) and the answer turn is on, the answer turn's answer is used
        (rule ANSWER_TURN_RULE); the flexible reading stays when that turn gives none."""
        steps, answer, rule = read_solution(text, family, question)
        if rule not in STRICT_RULES:
            asked, asked_rule = await self.answer_for(messages, reply_text, family)
            if asked is not None:
                answer, rule = asked, asked_rule
        return steps, answer, rule

    async def answer_for(self, messages: list[dict], reply_text: str,
                         family: str) -> tuple[str | None, str | None]:
        """(answer, ANSWER_TURN_RULE) read from one answer turn on `reply_text`, the reply to
        `messages` (Kojima et al. 2022, stage 2), or (None, None) when it is off, already
        asked or unreadable. A permanent error of that turn is noted, not raised."""
        if not self.answer_turn:
            return None, None
        self.answer_turn = False  # once per question
        try:
            reply = await self.ask(prompts.answer_turn_messages(messages, reply_text, family),
                                   max_tokens=ANSWER_TURN_MAX_TOKENS)
        except PermanentTeacherError as exc:
            self.note = f"answer turn failed: {sample_error(exc)}"
            return None, None
        answer = read_answer_turn(reply.text, family)
        return (answer, ANSWER_TURN_RULE) if answer is not None else (None, None)

    def record(self, req: AnnotationRequest, annotator: str, status: str, *, target: str = "",
               answer: str | None = None, accepted: int | None = None,
               error: str = "", rule: str | None = None) -> Annotation:
        if status == "unparsable" and not error:
            error = self.note
        return Annotation(
            question_id=req.question_id, annotator=annotator, status=status, target=target,
            answer=answer, revised_sample=req.sample_index, accepted_steps=accepted,
            raw=json.dumps(self.texts), error=error, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, cost_usd=self.cost_usd,
            n_requests=self.n_requests, answer_rule=rule,
        )


def read_answer_turn(text: str, family: str) -> str | None:
    """The answer of an answer-turn reply ("42.", "$42", "\\boxed{42}", "The final answer is
    42", "42, because 40 + 2 = 42"): an explicit statement (answers.STRICT_RULES), else the
    reply read as the end of the sentence the trigger began ("The final answer is <reply>"),
    else the flexible reading of the reply."""
    answer, rule = extract_answer(text, family)
    if rule in STRICT_RULES or not isinstance(text, str) or not text.strip():
        return answer
    completed, rule = extract_answer(f"The final answer is {text.strip()}", family)
    return completed if rule in STRICT_RULES else answer


def resolve_answer_turn(setting: bool | str | None, client: object) -> bool:
    """teacher.answer_turn -> on / off. "auto" (or None): on for a real teacher, off for the
    oracle test double (which always writes its answer) and for clients that name no model
    (test fakes)."""
    if isinstance(setting, bool):
        return setting
    if isinstance(setting, str) and setting.lower() in ("true", "false"):
        return setting.lower() == "true"
    from elad_core.teacher.client import ORACLE_MODEL

    model = getattr(client, "model", None)
    return isinstance(model, str) and bool(model) and model != ORACLE_MODEL


def read_solution(text: str, family: str,
                  question: str | None = None) -> tuple[list[str], str | None, str | None]:
    """Reasoning steps, normalised answer (None if unreadable) and the rule that read it."""
    return teacher_solution(text, family, question=question)


def read_full_solution(text: str, family: str,
                       question: str | None = None) -> tuple[list[str], str | None, str | None]:
    """Like read_solution, but only for a reply that holds a full solution: at least two lines,
    reasoning steps left after the answer, and the answer read by an explicit rule (`####`,
    boxed, "the answer is", "Answer:"), not a bare last line. Otherwise the answer is None."""
    steps, answer, rule = teacher_solution(text, family, question=question)
    if answer is None or rule not in EXPLICIT_RULES or not steps or len(split_steps(text)) < 2:
        return steps, None, None
    return steps, answer, rule


def label_answer(req: AnnotationRequest, family: str) -> str | None:
    """The student's answer to show the teacher: label tasks only (see prompts.STUDENT_ANSWER)."""
    return req.student_answer if family != "number" else None
