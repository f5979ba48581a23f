"""The `clear_single` annotator (docs/design.md §2.3), our one-call variant of CLEAR: the same
steps (`clear.judged_steps`) are sent numbered in one call, and the first wrong step and the
rewritten rest come back as JSON (`parse_clear_single`); its record is the same as CLEAR's. A
reply with no JSON that holds a full solution is used as the rest of the solution (status ok,
`error` notes NO_JSON).
"""

from __future__ import annotations

import json
from dataclasses import replace

from elad_core.elad import prompts
from elad_core.elad.annotators.clear import judged_steps
from elad_core.elad.annotators.cot import annotate_cot
from elad_core.elad.annotators.dialogue import (NO_JSON, AnnotationRequest, Dialogue, label_answer,
                                                read_full_solution)

from elad_core.explanations.prompt import ANSWER_CUE, student_target
from elad_core.explanations.answers import parse_answer
from elad_core.explanations.steps import split_steps
from elad_core.explanations.records import Annotation
from elad_core.errors import PermanentTeacherError, sample_error
from elad_core.teacher.client import TeacherClient


def _json_object(text: str) -> dict | None:
    """The JSON object the text holds between its first `{` and last `}` (code fences and prose
    around it allowed), or None."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start:end + 1])
    except (json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def parse_clear_single(text: str, n_steps: int, family: str) -> tuple[int, list[str], str] | None:
    """clear_single reply -> (accepted student steps, rewritten steps, normalised answer) or None.

    Lenient (docs/design.md §2.3): the first `{...}` object in the text (code fences allowed) with
    `first_wrong_step` (1-based int, or null = all n_steps right), `steps` (list of strings or
    one newline-separated string) and `answer`. None when any of it is unreadable or the index
    is outside 1..n_steps.
    """
    obj = _json_object(text)
    if obj is None:
        return None
    wrong, steps, raw = obj.get("first_wrong_step"), obj.get("steps", []), obj.get("answer")
    if wrong is None:
        accepted = n_steps
    elif isinstance(wrong, int) and not isinstance(wrong, bool) and 1 <= wrong <= n_steps:
        accepted = wrong - 1
    else:
        return None
    if isinstance(steps, str):
        steps = split_steps(steps)
    if not isinstance(steps, list) or not all(isinstance(x, str) for x in steps):
        return None
    answer = parse_answer(f"{ANSWER_CUE}{raw}", family).answer if raw is not None else None
    if answer is None:
        return None
    return accepted, [x.strip() for x in steps if x.strip()], answer


async def annotate_clear_single(client: TeacherClient, req: AnnotationRequest,
                                family: str = "number", answer_turn: bool = False) -> Annotation:
    """clear_single revision of `req.explanation` in one call (docs/design.md §2.3).

    The student's steps are those CLEAR judges (`judged_steps`). Target = the student's steps
    before the first wrong one + the teacher's rewritten steps + `#### answer`; accepted_steps =
    how many student steps were kept. No explanation or no steps: one CoT call, recorded as
    annotator "clear_single" with accepted_steps 0 (answer_turn applies to that call only:
    the JSON reply names its answer). Raises TransientTeacherError.
    """
    student_steps = judged_steps(req.explanation, family)
    if not student_steps:
        cot = await annotate_cot(client, req, family, answer_turn)
        return replace(cot, annotator="clear_single", accepted_steps=0)
    dialogue = Dialogue(client)
    try:
        reply = await dialogue.ask(prompts.clear_single_messages(
            req.question, student_steps, label_answer(req, family)))
    except PermanentTeacherError as exc:
        return dialogue.record(req, "clear_single", "failed", error=sample_error(exc))
    parsed = parse_clear_single(reply.text, len(student_steps), family)
    if parsed is None and _json_object(reply.text) is None:
        # no JSON at all: a reply that holds a full solution replaces every student step
        steps, answer, rule = read_full_solution(reply.text, family, req.question)
        if answer is not None:
            target = student_target("\n".join(steps), answer)
            return dialogue.record(req, "clear_single", "ok", target=target, answer=answer,
                                   accepted=0, error=NO_JSON, rule=rule)
    if parsed is None:
        return dialogue.record(req, "clear_single", "unparsable")
    accepted, steps, answer = parsed
    target = student_target("\n".join(student_steps[:accepted] + steps), answer)
    return dialogue.record(req, "clear_single", "ok", target=target, answer=answer,
                           accepted=accepted)
