"""The `clear` annotator: CLEAR (Zhang et al., ELAD, Findings of ACL 2024, §3.2; docs/design.md
§2.3) revises one student explanation step by step: while the teacher says "yes" its own version
ŝᵢ of the step is kept; at the first "no" the teacher supplies the remaining steps and the final
answer. The paper proposes one step per turn and resends the whole dialogue each time; since
prompt v2 (issue #21) each turn is one stateless request proposing a chunk of steps
(`judged_steps`: up to the student's answer line, repeats once, capped; CLEAR_*), judged in
order with one verdict line per step (`verdicts.parse_chunk_reply`), so a real student's
explanation costs 1.7-1.9x a CoT annotation instead of 5.7-10.7x (benchmarks/clear_cost.py).
A reply with no verdict that holds a full solution is used as the rest of the solution (status
ok, `error` notes PROTOCOL_IGNORED).
"""

from __future__ import annotations

from dataclasses import replace

from elad_core.elad import prompts
from elad_core.elad.annotators.cot import annotate_cot
from elad_core.elad.annotators.dialogue import (EXPLICIT_RULES, PROTOCOL_IGNORED, AnnotationRequest,
                                                Dialogue, label_answer, read_full_solution,
                                                read_solution)
from elad_core.elad.annotators.verdicts import parse_chunk_reply, parse_verdict

from elad_core.explanations.prompt import ANSWER_CUE, student_target
from elad_core.explanations.steps import teacher_solution
from elad_core.explanations.records import Annotation
from elad_core.errors import PermanentTeacherError, sample_error
from elad_core.teacher.client import TeacherClient


# CLEAR's cost controls (issue #21; docs/design.md §2.3). The student's explanation is judged up
# to its first answer line, repeated lines once, at most CLEAR_MAX_STEPS steps and
# CLEAR_MAX_CHARS characters (the first step always); each turn proposes up to CLEAR_CHUNK_STEPS
# of them. Measured on SmolLM2-135M-Instruct's GSM8K explanations (benchmarks/clear_cost.py):
# a second turn resends the question and the instructions (~200 tokens) for a step or two more,
# so one chunk holds every judged step; 600 characters keep ~1.1-2.5 accepted student steps per
# question at 1.7-1.9x the tokens of `cot` (chunks of 4: up to 2.2x; the old dialogue: 5.7-10.7x).
# Changing them changes the requests: bump prompts.PROMPT_VERSION.
CLEAR_CHUNK_STEPS = 8
CLEAR_MAX_STEPS = 8
CLEAR_MAX_CHARS = 600


def judged_steps(explanation: str | None, family: str = "number", max_steps: int | None = None,
                 max_chars: int | None = None) -> list[str]:
    """The student steps CLEAR and clear_single judge (docs/design.md §2.3): the explanation's
    non-empty lines up to its first answer line (`#### N`, or a line that only states the
    answer; a line with reasoning that ends in one is the last step), each repeated line kept
    once (case and spacing ignored), at most `max_steps` steps and `max_chars` characters (the
    first step always). A small student rambles on after its answer or repeats itself; the
    teacher would be paid to read it."""
    max_steps = CLEAR_MAX_STEPS if max_steps is None else max_steps
    max_chars = CLEAR_MAX_CHARS if max_chars is None else max_chars
    out: list[str] = []
    seen: set[str] = set()
    chars = 0
    for raw in (explanation or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(ANSWER_CUE.strip()):
            break
        before, answer, rule = teacher_solution(line, family)
        ends = answer is not None and rule in EXPLICIT_RULES
        if ends and not before:
            break
        key = " ".join(line.lower().split())
        if key not in seen:
            if out and (len(out) >= max_steps or chars + len(line) > max_chars):
                break
            seen.add(key)
            out.append(line)
            chars += len(line)
        if ends:
            break
    return out


async def annotate_clear(client: TeacherClient, req: AnnotationRequest, family: str = "number",
                         max_turns: int = 16, answer_turn: bool = False,
                         chunk_steps: int | None = None, max_steps: int | None = None,
                         max_chars: int | None = None) -> Annotation:
    """CLEAR revision of `req.explanation` (ELAD §3.2; docs/design.md §2.3).

    The student's steps (`judged_steps`) are proposed `chunk_steps` at a time, each turn one
    stateless request (the question, the steps accepted so far in the teacher's versions, the
    chunk numbered on from them; prompts.clear_chunk_messages). The teacher judges the chunk's
    steps in order: "Step n: Yes. <its version>" while they are right, "Step n: No." + the rest
    of the solution at the first wrong one, which ends the dialogue. The last chunk asks the
    teacher to finish the solution when all its steps are right; if no answer comes back, one
    closing turn asks for it (prompts.clear_finish_messages). At most max(max_turns, 2) such
    calls (the turn before the closing one is always a last chunk; later student steps are not
    judged), plus one answer turn when `answer_turn` is on and no answer could be read. No
    steps: one CoT call, recorded as annotator "clear" with accepted_steps 0.
    Raises TransientTeacherError.
    """
    steps = judged_steps(req.explanation, family, max_steps, max_chars)
    if not steps:
        cot = await annotate_cot(client, req, family, answer_turn)
        return replace(cot, annotator="clear", accepted_steps=0)
    dialogue = Dialogue(client, answer_turn)
    label = label_answer(req, family)
    limit = max(max_turns, 2)
    chunk_steps = max(1, CLEAR_CHUNK_STEPS if chunk_steps is None else chunk_steps)
    revised: list[str] = []
    i = 0
    try:
        while True:
            chunk = steps[i:i + chunk_steps]
            last = i + len(chunk) >= len(steps) or dialogue.n_requests >= limit - 2
            messages = prompts.clear_chunk_messages(req.question, revised, chunk, last, label)
            reply = await dialogue.ask(messages)
            judged = parse_chunk_reply(reply.text, len(chunk))
            if judged is None:
                return await _finish(dialogue, req, revised, reply.text, family, messages,
                                     reply.text, protocol_ignored=True)
            own, rejected, tail = judged
            revised += [o or s for o, s in zip(own, chunk)]
            i += len(own)
            if rejected:
                return await _finish(dialogue, req, revised, tail, family, messages, reply.text)
            if last and len(own) == len(chunk) and read_solution(tail, family, req.question)[1]:
                # all right, and the teacher finished the solution
                return await _finish(dialogue, req, revised, tail, family, messages, reply.text)
            if i >= len(steps) or dialogue.n_requests >= limit - 1:
                break  # every step judged, or only the closing turn is left
        messages = prompts.clear_finish_messages(req.question, revised, label)
        reply = await dialogue.ask(messages)
        verdict, rest = parse_verdict(reply.text)  # "Yes! The final answer is 42." -> the answer
        return await _finish(dialogue, req, revised, rest if verdict else reply.text, family,
                             messages, reply.text)
    except PermanentTeacherError as exc:
        return dialogue.record(req, "clear", "failed", accepted=len(revised),
                               error=sample_error(exc))


def _ok(dialogue: Dialogue, req: AnnotationRequest, revised: list[str], steps: list[str],
        answer: str, rule: str | None, error: str = "") -> Annotation:
    target = student_target("\n".join(revised + steps), answer)
    return dialogue.record(req, "clear", "ok", target=target, answer=answer, accepted=len(revised),
                           error=error, rule=rule)


async def _finish(dialogue: Dialogue, req: AnnotationRequest, revised: list[str], text: str,
                  family: str, messages: list[dict], reply_text: str,
                  protocol_ignored: bool = False) -> Annotation:
    """Target = accepted ŝ₁..ŝᵢ + the steps and answer of the closing text `text` (part of the
    reply `reply_text` to `messages`), rebuilt in the student's format; no readable answer:
    one answer turn, if on. protocol_ignored: `text` had no verdict; it counts only if it holds
    a full solution (status ok, error notes PROTOCOL_IGNORED), else status unparsable."""
    if protocol_ignored:
        steps, answer, rule = read_full_solution(text, family, req.question)
    else:
        steps, answer, rule = await dialogue.solution(messages, reply_text, text, family,
                                                      req.question)
    if answer is None:
        return dialogue.record(req, "clear", "unparsable", accepted=len(revised))
    return _ok(dialogue, req, revised, steps, answer, rule,
               PROTOCOL_IGNORED if protocol_ignored else "")
