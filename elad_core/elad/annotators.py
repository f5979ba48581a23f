"""Teacher annotators (docs/design.md §2.3): `cot` (solve from scratch), `clear` (ELAD's CLEAR) and
`clear_single` (our one-call variant of CLEAR).

CLEAR (Zhang et al., ELAD, Findings of ACL 2024, §3.2) revises one student explanation in a
multi-turn dialogue: each student step is proposed in turn; while the teacher says "yes" its own
version ŝᵢ of the step is kept; at the first "no" the teacher's reply supplies the remaining
steps and the final answer; if every step is accepted the teacher is asked once for the answer.
`clear_single` sends all student steps numbered in one call and reads back, as JSON, the first
wrong step and the rewritten rest; its record is the same as CLEAR's.

Replies are parsed leniently and never raise: the final answer is read in any common layout
(`parsing.extract_answer`: `#### N`, `\\boxed{N}`, "the answer is N", "Answer: N", a bare last
line; the rule that read it goes to Annotation.answer_rule), verdicts in common phrasings
(`parse_verdict`), and the target is rebuilt in the student's format. A CLEAR reply with no
verdict, or a clear_single reply with no JSON, that holds a full solution is used as the rest
of the solution (status ok, `error` notes PROTOCOL_IGNORED / NO_JSON). An unreadable reply
gives an Annotation with status "unparsable" and its raw text. PermanentTeacherError ->
status "failed" with the reason in `error`; TeacherAuthError (a rejected key) and TransientTeacherError propagate to
the caller, which stops or retries the batch (docs/design.md §3). A retried dialogue replays its
earlier turns from the client's reply journal, so no turn is paid twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, replace

from elad_core.elad import prompts
from elad_core.elad.parsing import parse_answer, split_steps, teacher_solution
from elad_core.elad.records import Annotation
from elad_core.errors import (
    PermanentTeacherError,
    TeacherAuthError,
    TransientTeacherError,
)
from elad_core.teacher.client import TeacherClient, TeacherReply

logger = logging.getLogger(__name__)

ANNOTATORS = ("cot", "clear", "clear_single")

# CLEAR verdicts as real models phrase them, at the start of a reply (markdown tolerated):
# "Yes." / "**No**:" / "> yes," / "Yes, that's right" / "Correct." / "That step is correct" /
# "No —" / "Not quite" / "Incorrect" / "That's wrong". Anything else is no verdict.
_DECOR = r"[\s*_#>`\"'“”]*"
_TAIL = r"[\s*_`\"'“”.,:;!\-—–]*"
_SUBJECT = (r"(?:that|this|the|your|it)(?:\s+(?:step|one|move|reasoning|calculation|statement))?"
            r"(?:'s|’s|\s+is|\s+looks|\s+seems)\s+(?:(?:absolutely|perfectly|entirely|completely"
            r"|fully|totally|all|quite)\s+)?")
_VERDICT_WORDS = {
    "yes": (r"(?:yes|yeah|yep|yup)\b",
            r"(?:correct|right|exactly|absolutely|indeed|agreed|valid|accurate)(?=\s*[*_`\"'.,:;!—–\-]|\s*$)",
            _SUBJECT + r"(?:correct|right|valid|accurate|fine|good)\b"),
    "no": (r"(?:no|nope|nah)\b",
           r"(?:not\s+(?:quite|really|exactly|correct|right)|incorrect|wrong|invalid|inaccurate)\b"
           r"|not(?=\s*[*_`\"'.,:;!—–\-]|\s*$)",
           r"(?:that|this|the|your|it)(?:\s+(?:step|one|move|reasoning|calculation|statement))?"
           r"(?:'s|’s|\s+is|\s+looks|\s+seems|\s+isn't|\s+isn’t)\s+(?:not\s+(?:quite\s+|entirely\s+"
           r"|completely\s+|fully\s+)?(?:correct|right|valid|accurate)|quite\s+right|incorrect|wrong"
           r"|invalid|inaccurate|flawed|a\s+mistake|an\s+error)\b"),
}
_HEDGE_RE = re.compile(r"^" + _DECOR + r"(?:unfortunately|sadly|i'm\s+afraid|i’m\s+afraid|actually|hmm)"
                       r"[\s,:]*", re.IGNORECASE)
# longest phrasings first: "No, that's not right" is "no"; "That's not correct" is not "yes"
_VERDICT_RES = [(verdict, re.compile(r"^" + _DECOR + rf"({pattern})" + _TAIL, re.IGNORECASE))
                for index in (2, 1, 0) for verdict in ("no", "yes")
                for pattern in [_VERDICT_WORDS[verdict][index]]]
# "I'm afraid not" / "Unfortunately not"
_AFRAID_NOT_RE = re.compile(r"^" + _DECOR + r"(?:i'm|i’m|i\s+am)\s+afraid\s+not\b" + _TAIL, re.IGNORECASE)
# A reply that ignores the yes/no protocol but holds a full solution (reasoning lines and an
# explicit final answer) is used as the rest of the solution: status ok, this note in `error`.
PROTOCOL_IGNORED = "protocol_ignored: no yes/no verdict; the reply's full solution was used"
NO_JSON = "protocol_ignored: no JSON object; the reply's full solution was used"
_EXPLICIT_RULES = ("hash", "boxed", "answer_is", "answer_label")


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


class _Dialogue:
    """Usage and raw replies accumulated over all calls made for one question."""

    def __init__(self, client: TeacherClient):
        self.client = client
        self.texts: list[str] = []
        self.prompt_tokens = self.completion_tokens = self.n_requests = 0
        self.cost_usd = 0.0

    async def ask(self, messages: list[dict]) -> TeacherReply:
        self.n_requests += 1
        reply = await self.client.chat(messages)
        self.texts.append(reply.text)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost_usd += reply.cost_usd
        return reply

    def record(self, req: AnnotationRequest, annotator: str, status: str, *, target: str = "",
               answer: str | None = None, accepted: int | None = None,
               error: str = "", rule: str | None = None) -> Annotation:
        return Annotation(
            question_id=req.question_id, annotator=annotator, status=status, target=target,
            answer=answer, revised_sample=req.sample_index, accepted_steps=accepted,
            raw=json.dumps(self.texts), error=error, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, cost_usd=self.cost_usd,
            n_requests=self.n_requests, answer_rule=rule,
        )


def _match_verdict(text: str) -> tuple[str, int] | None:
    m = _AFRAID_NOT_RE.match(text)
    if m is not None:
        return "no", m.end()
    for verdict, pattern in _VERDICT_RES:
        m = pattern.match(text)
        if m is not None:
            return verdict, m.end()
    return None


def parse_verdict(text: str) -> tuple[str | None, str]:
    """Teacher CLEAR reply -> ("yes" | "no" | None, the text after the verdict).

    The verdict opens the reply, in any common phrasing ("Yes.", "**Yes.**", "Yes, that's
    right", "Correct.", "That step is correct"; "No —", "Not quite", "Incorrect", "That's
    wrong", "Unfortunately, no"). A restatement of the verdict right after it ("Yes, that's
    correct.") is dropped from the returned text, so the first line left is the teacher's own
    step. No verdict: (None, text). Never raises.
    """
    if not isinstance(text, str):
        return None, ""
    hedge = _HEDGE_RE.match(text)
    body = text[hedge.end():] if hedge else text
    found = _match_verdict(body)
    if found is None:
        return None, text
    verdict, end = found
    rest = body[end:]
    for _ in range(3):  # "No, that's not right. Not quite: ..." -> the text after it
        if "\n" in body[:len(body) - len(rest)]:
            break  # a restatement shares the verdict's line; the next line is the step
        again = _match_verdict(rest)
        if again is None or again[0] != verdict or again[1] == 0:
            break
        rest = rest[again[1]:]
    return verdict, rest


def _solution(text: str, family: str) -> tuple[list[str], str | None, str | None]:
    """Reasoning steps, normalised answer (None if unreadable) and the rule that read it."""
    return teacher_solution(text, family)


def _full_solution(text: str, family: str) -> tuple[list[str], str | None, str | None]:
    """Like _solution, but only for a reply that holds a full solution: at least two lines,
    reasoning steps left after the answer, and the answer read by an explicit rule (`####`,
    boxed, "the answer is", "Answer:"), not a bare last line. Otherwise the answer is None."""
    steps, answer, rule = teacher_solution(text, family)
    if answer is None or rule not in _EXPLICIT_RULES or not steps or len(split_steps(text)) < 2:
        return steps, None, None
    return steps, answer, rule


async def annotate_cot(client: TeacherClient, req: AnnotationRequest,
                       family: str = "number") -> Annotation:
    """CoT annotation: one call, the teacher solves the question from scratch (docs/design.md §2.3).

    Returns status ok (target = steps + `#### answer`), unparsable (no readable answer) or
    failed (PermanentTeacherError). Raises TransientTeacherError.
    """
    dialogue = _Dialogue(client)
    try:
        reply = await dialogue.ask(prompts.cot_messages(req.question))
    except TeacherAuthError:
        raise
    except PermanentTeacherError as exc:
        return dialogue.record(req, "cot", "failed", error=str(exc))
    steps, answer, rule = _solution(reply.text, family)
    if answer is None:
        return dialogue.record(req, "cot", "unparsable")
    target = prompts.student_target("\n".join(steps), answer)
    return dialogue.record(req, "cot", "ok", target=target, answer=answer, rule=rule)


async def annotate_clear(client: TeacherClient, req: AnnotationRequest, family: str = "number",
                         max_turns: int = 16) -> Annotation:
    """CLEAR revision of `req.explanation` (docs/design.md §2.3); at most max(max_turns, 2) calls.

    When the turns run out before the student's steps do, the teacher is asked for the final
    answer (CLEAR_FINAL) with the steps accepted so far. No explanation or no steps: one CoT
    call, recorded as annotator "clear" with accepted_steps 0. Raises TransientTeacherError.
    """
    student_steps = split_steps(req.explanation or "")
    if not student_steps:
        return replace(await annotate_cot(client, req, family), annotator="clear", accepted_steps=0)
    dialogue = _Dialogue(client)
    messages = [{"role": "system", "content": prompts.TEACHER_SYSTEM},
                prompts.clear_first_message(req.question, student_steps[0],
                                            _label_answer(req, family))]
    revised: list[str] = []
    try:
        for i, step in enumerate(student_steps):
            if i > 0:
                messages.append(prompts.clear_next_message(step))
            reply = await dialogue.ask(messages)
            messages.append({"role": "assistant", "content": reply.text})
            verdict, rest = parse_verdict(reply.text)
            if verdict is None:
                return _finish(dialogue, req, revised, reply.text, family, protocol_ignored=True)
            if verdict == "no":
                return _finish(dialogue, req, revised, rest, family)
            own = split_steps(rest)
            revised.append(own[0] if own else step)
            if dialogue.n_requests >= max_turns - 1:
                break
        messages.append(prompts.clear_final_message())
        reply = await dialogue.ask(messages)
    except TeacherAuthError:
        raise
    except PermanentTeacherError as exc:
        return dialogue.record(req, "clear", "failed", accepted=len(revised), error=str(exc))
    verdict, rest = parse_verdict(reply.text)  # "Yes! The final answer is 42." -> the answer
    return _finish(dialogue, req, revised, rest if verdict else reply.text, family)


def _label_answer(req: AnnotationRequest, family: str) -> str | None:
    """The student's answer to show the teacher: label tasks only (see prompts.STUDENT_ANSWER)."""
    return req.student_answer if family != "number" else None


def _finish(dialogue: _Dialogue, req: AnnotationRequest, revised: list[str], text: str,
            family: str, protocol_ignored: bool = False) -> Annotation:
    """Target = accepted ŝ₁..ŝᵢ + the steps and answer of the closing reply `text`, rebuilt in
    the student's format. protocol_ignored: `text` had no verdict; it counts only if it holds a
    full solution (status ok, error notes PROTOCOL_IGNORED), else status unparsable."""
    read = _full_solution if protocol_ignored else _solution
    steps, answer, rule = read(text, family)
    if answer is None:
        return dialogue.record(req, "clear", "unparsable", accepted=len(revised))
    target = prompts.student_target("\n".join(revised + steps), answer)
    return dialogue.record(req, "clear", "ok", target=target, answer=answer, accepted=len(revised),
                           error=PROTOCOL_IGNORED if protocol_ignored else "", rule=rule)


def _has_json_object(text: str) -> bool:
    """True when the text between its first `{` and last `}` is a JSON object."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return False
    try:
        return isinstance(json.loads(text[start:end + 1]), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def parse_clear_single(text: str, n_steps: int, family: str) -> tuple[int, list[str], str] | None:
    """clear_single reply -> (accepted student steps, rewritten steps, normalised answer) or None.

    Lenient (docs/design.md §2.3): the first `{...}` object in the text (code fences allowed) with
    `first_wrong_step` (1-based int, or null = all n_steps right), `steps` (list of strings or
    one newline-separated string) and `answer`. None when any of it is unreadable or the index
    is outside 1..n_steps.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
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
    answer = parse_answer(f"{prompts.ANSWER_CUE}{raw}", family).answer if raw is not None else None
    if answer is None:
        return None
    return accepted, [x.strip() for x in steps if x.strip()], answer


async def annotate_clear_single(client: TeacherClient, req: AnnotationRequest,
                                family: str = "number") -> Annotation:
    """clear_single revision of `req.explanation` in one call (docs/design.md §2.3).

    Target = the student's steps before the first wrong one + the teacher's rewritten steps +
    `#### answer`; accepted_steps = how many student steps were kept. No explanation or no
    steps: one CoT call, recorded as annotator "clear_single" with accepted_steps 0.
    Raises TransientTeacherError.
    """
    student_steps = split_steps(req.explanation or "")
    if not student_steps:
        cot = await annotate_cot(client, req, family)
        return replace(cot, annotator="clear_single", accepted_steps=0)
    dialogue = _Dialogue(client)
    try:
        reply = await dialogue.ask(prompts.clear_single_messages(
            req.question, student_steps, _label_answer(req, family)))
    except TeacherAuthError:
        raise
    except PermanentTeacherError as exc:
        return dialogue.record(req, "clear_single", "failed", error=str(exc))
    parsed = parse_clear_single(reply.text, len(student_steps), family)
    if parsed is None and not _has_json_object(reply.text):
        # no JSON at all: a reply that holds a full solution replaces every student step
        steps, answer, rule = _full_solution(reply.text, family)
        if answer is not None:
            target = prompts.student_target("\n".join(steps), answer)
            return dialogue.record(req, "clear_single", "ok", target=target, answer=answer,
                                   accepted=0, error=NO_JSON, rule=rule)
    if parsed is None:
        return dialogue.record(req, "clear_single", "unparsable")
    accepted, steps, answer = parsed
    target = prompts.student_target("\n".join(student_steps[:accepted] + steps), answer)
    return dialogue.record(req, "clear_single", "ok", target=target, answer=answer,
                           accepted=accepted)


def annotate_batch(client: TeacherClient, annotator: str, requests: list[AnnotationRequest],
                   family: str = "number", max_turns: int = 16) -> list[Annotation]:
    """Annotate `requests` concurrently (bounded by the client's semaphore); call from sync code.

    Returns one Annotation per request, in request order. If any request hit a transient
    failure, raises TransientTeacherError after all have finished (message: how many of how
    many; retry_after_s: the largest hint; completed: the annotations that did finish, so
    the caller retries only the failed requests).
    """
    if annotator not in ANNOTATORS:
        raise ValueError(f"unknown annotator {annotator!r}; expected one of {ANNOTATORS}")

    async def run() -> list[Annotation | BaseException]:
        if annotator == "cot":
            calls = [annotate_cot(client, r, family) for r in requests]
        elif annotator == "clear_single":
            calls = [annotate_clear_single(client, r, family) for r in requests]
        else:
            calls = [annotate_clear(client, r, family, max_turns) for r in requests]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    transient = [r for r in results if isinstance(r, TransientTeacherError)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, TransientTeacherError):
            raise r
    if transient:
        hints = [e.retry_after_s for e in transient if e.retry_after_s is not None]
        raise TransientTeacherError(
            f"{len(transient)} of {len(requests)} teacher requests failed transiently "
            f"(first: {transient[0]}); retry the batch",
            retry_after_s=max(hints) if hints else None,
            completed=[r for r in results if isinstance(r, Annotation)],
        )
    return results  # type: ignore[return-value]
