"""Teacher annotators (docs/design.md §2.3): `cot` (solve from scratch), `clear` (ELAD's CLEAR) and
`clear_single` (our one-call variant of CLEAR).

CLEAR (Zhang et al., ELAD, Findings of ACL 2024, §3.2) revises one student explanation step by
step: while the teacher says "yes" its own version ŝᵢ of the step is kept; at the first "no" the
teacher supplies the remaining steps and the final answer. The paper proposes one step per turn
and resends the whole dialogue each time; since prompt v2 (issue #21) each turn is one stateless
request proposing a chunk of steps (`judged_steps`: up to the student's answer line, repeats
once, capped), judged in order with one verdict line per step (`parse_chunk_reply`), so a real
student's explanation costs 1.7-1.9x a CoT annotation instead of 5.7-10.7x
(benchmarks/clear_cost.py). `clear_single` sends the same steps numbered in one call and reads
back, as JSON, the first wrong step and the rewritten rest; its record is the same as CLEAR's.
A reply whose answer no explicit statement gives gets one answer turn (Kojima et al. 2022) when
`answer_turn` is on (`_Dialogue.solution`).

Replies are parsed leniently and never raise: the final answer is read in any common layout
(`answers.extract_answer`: `#### N`, `\\boxed{N}`, "the answer is N", "Answer: N", a bare last
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

from elad_core.explanations.prompt import ANSWER_CUE, student_target
from elad_core.explanations.answers import STRICT_RULES, extract_answer, parse_answer
from elad_core.explanations.steps import split_steps, teacher_solution
from elad_core.explanations.records import Annotation
from elad_core.errors import PermanentTeacherError, TransientTeacherError, sample_error
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
# the answer turn (Kojima et al. 2022): the reply of at most this many tokens holds the answer
ANSWER_TURN_MAX_TOKENS = 24
ANSWER_TURN_RULE = "answer_turn"  # Annotation.answer_rule of an answer read from it
# "Step 3: Yes. ..." / "**Step 3:** No" / "3. Correct" / "Step 3 is wrong" at a line's start
_STEP_TAG_RE = re.compile(r"^[\s*_#>`\-]*(?:step\s*\d+(?:\s+(?:is|was))?|\d+\s*[.):])"
                          r"[\s*_`]*[:.)\-–—]?[\s*_`]*", re.IGNORECASE)


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
        steps, answer, rule = _solution(text, family, question)
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


def _tagged_verdict(line: str) -> tuple[str, str] | None:
    """("yes" | "no", the rest of the line) of a line such as "Step 3: Yes. <step>",
    "**Step 3:** No", "3. Correct" or "Step 3 is wrong"; None for other lines."""
    m = _STEP_TAG_RE.match(line)
    if m is None:
        return None
    verdict, rest = parse_verdict(line[m.end():])
    return (verdict, rest.strip()) if verdict is not None else None


def parse_chunk_reply(text: str, n_steps: int) -> tuple[list[str | None], bool, str] | None:
    """A reply to a CLEAR chunk of `n_steps` student steps -> (own versions of the accepted
    steps, in order (None: keep the student's), whether the next step was rejected, the text
    after the verdicts: the rest of the solution). None: no verdict at all.

    The protocol's reply is one verdict line per step, "Step <n>: Yes. <own version>" (the own
    version may be on the next line) up to the first "Step <n>: No." that is followed by the
    rest. Lines before the first verdict line are ignored. A reply that opens with a bare
    verdict ("Yes.\\n<own step>", "No. <rest>": the one-step protocol of the paper) judges the
    chunk's first step only. Never raises.
    """
    if not isinstance(text, str):
        return None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    if _tagged_verdict(lines[first]) is None:
        verdict, rest = parse_verdict(text)
        if verdict == "no":
            return [], True, rest
        if verdict == "yes":
            rest_lines = rest.splitlines()
            at = next((i for i, line in enumerate(rest_lines)
                       if line.strip() and not line.strip().startswith(ANSWER_CUE.strip())),
                      None)
            if at is None:
                return [None], False, rest
            return [rest_lines[at].strip()], False, "\n".join(rest_lines[at + 1:])
        first = next((i for i, line in enumerate(lines) if _tagged_verdict(line)), None)
        if first is None:
            return None
    own: list[str | None] = []
    i = first
    while i < len(lines) and len(own) < n_steps:
        tagged = _tagged_verdict(lines[i])
        if tagged is None:
            if lines[i].strip():
                break  # the verdicts ended: the rest of the reply follows
            i += 1
            continue
        verdict, rest = tagged
        if verdict == "no":
            return own, True, "\n".join([rest, *lines[i + 1:]])
        i += 1
        if not rest and i < len(lines) and lines[i].strip() and _tagged_verdict(lines[i]) is None \
                and not lines[i].strip().startswith(ANSWER_CUE.strip()):
            rest, i = lines[i].strip(), i + 1  # "Step 3: Yes." / "<own version>"
        own.append(rest or None)
    return own, False, "\n".join(lines[i:])


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
        ends = answer is not None and rule in _EXPLICIT_RULES
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


def _solution(text: str, family: str,
              question: str | None = None) -> tuple[list[str], str | None, str | None]:
    """Reasoning steps, normalised answer (None if unreadable) and the rule that read it."""
    return teacher_solution(text, family, question=question)


def _full_solution(text: str, family: str,
                   question: str | None = None) -> tuple[list[str], str | None, str | None]:
    """Like _solution, but only for a reply that holds a full solution: at least two lines,
    reasoning steps left after the answer, and the answer read by an explicit rule (`####`,
    boxed, "the answer is", "Answer:"), not a bare last line. Otherwise the answer is None."""
    steps, answer, rule = teacher_solution(text, family, question=question)
    if answer is None or rule not in _EXPLICIT_RULES or not steps or len(split_steps(text)) < 2:
        return steps, None, None
    return steps, answer, rule


async def annotate_cot(client: TeacherClient, req: AnnotationRequest,
                       family: str = "number", answer_turn: bool = False) -> Annotation:
    """CoT annotation: one call, the teacher solves the question from scratch (docs/design.md §2.3).

    Returns status ok (target = steps + `#### answer`), unparsable (no readable answer) or
    failed (PermanentTeacherError). answer_turn: a reply with no readable answer gets one
    answer turn (`_Dialogue.answer_for`). Raises TransientTeacherError.
    """
    dialogue = _Dialogue(client, answer_turn)
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
    dialogue = _Dialogue(client, answer_turn)
    label = _label_answer(req, family)
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
            if last and len(own) == len(chunk) and _solution(tail, family, req.question)[1]:
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


def _label_answer(req: AnnotationRequest, family: str) -> str | None:
    """The student's answer to show the teacher: label tasks only (see prompts.STUDENT_ANSWER)."""
    return req.student_answer if family != "number" else None


def _ok(dialogue: _Dialogue, req: AnnotationRequest, revised: list[str], steps: list[str],
        answer: str, rule: str | None, error: str = "") -> Annotation:
    target = student_target("\n".join(revised + steps), answer)
    return dialogue.record(req, "clear", "ok", target=target, answer=answer, accepted=len(revised),
                           error=error, rule=rule)


async def _finish(dialogue: _Dialogue, req: AnnotationRequest, revised: list[str], text: str,
                  family: str, messages: list[dict], reply_text: str,
                  protocol_ignored: bool = False) -> Annotation:
    """Target = accepted ŝ₁..ŝᵢ + the steps and answer of the closing text `text` (part of the
    reply `reply_text` to `messages`), rebuilt in the student's format; no readable answer:
    one answer turn, if on. protocol_ignored: `text` had no verdict; it counts only if it holds
    a full solution (status ok, error notes PROTOCOL_IGNORED), else status unparsable."""
    if protocol_ignored:
        steps, answer, rule = _full_solution(text, family, req.question)
    else:
        steps, answer, rule = await dialogue.solution(messages, reply_text, text, family,
                                                      req.question)
    if answer is None:
        return dialogue.record(req, "clear", "unparsable", accepted=len(revised))
    return _ok(dialogue, req, revised, steps, answer, rule,
               PROTOCOL_IGNORED if protocol_ignored else "")


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
    dialogue = _Dialogue(client)
    try:
        reply = await dialogue.ask(prompts.clear_single_messages(
            req.question, student_steps, _label_answer(req, family)))
    except PermanentTeacherError as exc:
        return dialogue.record(req, "clear_single", "failed", error=sample_error(exc))
    parsed = parse_clear_single(reply.text, len(student_steps), family)
    if parsed is None and _json_object(reply.text) is None:
        # no JSON at all: a reply that holds a full solution replaces every student step
        steps, answer, rule = _full_solution(reply.text, family, req.question)
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


def annotate_batch(client: TeacherClient, annotator: str, requests: list[AnnotationRequest],
                   family: str = "number", max_turns: int = 16,
                   answer_turn: bool | str = "auto") -> list[Annotation]:
    """Annotate `requests` concurrently (bounded by the client's semaphore); call from sync code.

    answer_turn: teacher.answer_turn (true / false / "auto": on unless the teacher is the oracle
    test double; `resolve_answer_turn`): a reply with no readable answer is sent back once with
    an answer trigger (Kojima et al. 2022), its answer recorded with rule "answer_turn".

    Returns one Annotation per request, in request order. If any request hit a transient
    failure, raises TransientTeacherError after all have finished (message: how many of how
    many; retry_after_s: the largest hint; completed: the annotations that did finish, so
    the caller retries only the failed requests).
    """
    if annotator not in ANNOTATORS:
        raise ValueError(f"unknown annotator {annotator!r}; expected one of {ANNOTATORS}")

    turn = resolve_answer_turn(answer_turn, client)

    async def run() -> list[Annotation | BaseException]:
        if annotator == "cot":
            calls = [annotate_cot(client, r, family, turn) for r in requests]
        elif annotator == "clear_single":
            calls = [annotate_clear_single(client, r, family, turn) for r in requests]
        else:
            calls = [annotate_clear(client, r, family, max_turns, turn) for r in requests]
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
