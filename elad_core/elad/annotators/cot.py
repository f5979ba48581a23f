"""The `cot` annotator (docs/design.md §2.3): one call, the teacher solves the question from
scratch."""

from __future__ import annotations

from elad_core.elad import prompts
from elad_core.elad.annotators.dialogue import AnnotationRequest, Dialogue

from elad_core.explanations.prompt import student_target
from elad_core.explanations.records import Annotation
from elad_core.errors import PermanentTeacherError, sample_error
from elad_core.teacher.client import TeacherClient


async def annotate_cot(client: TeacherClient, req: AnnotationRequest,
                       family: str = "number", answer_turn: bool = False) -> Annotation:
    """CoT annotation: one call, the teacher solves the question from scratch (docs/design.md §2.3).

    Returns status ok (target = steps + `#### answer`), unparsable (no readable answer) or
    failed (PermanentTeacherError). answer_turn: a reply with no readable answer gets one
    answer turn (`Dialogue.answer_for`). Raises TransientTeacherError.
    """
    dialogue = Dialogue(client, answer_turn)
    messages = prompts.cot_messages(req.question)
    try:
        reply = await dialogue.ask(messages)
        steps, answer, rule = await dialogue.solution(messages, reply.text, reply.text, family,
                                                      req.question)
    except PermanentTeacherError as exc:
        return dialogue.record(req, "cot", "failed", error=sample_error(exc))
    if answer is None:
        return dialogue.record(req, "cot", "unparsable")
    target = student_target("\n".join(steps), answer)
    return dialogue.record(req, "cot", "ok", target=target, answer=answer, rule=rule)
