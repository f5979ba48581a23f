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
`answer_turn` is on (`dialogue.Dialogue.solution`).

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

The package, one module per idea: `dialogue` (AnnotationRequest, the dialogue bookkeeping and
the answer turn), `verdicts` (reading CLEAR's verdict replies), `cot`, `clear` and
`clear_single` (the three annotators); this module holds the registry (ANNOTATORS) and
`annotate_batch`, and re-exports the names used outside the package.
"""

from __future__ import annotations

import asyncio

from elad_core.elad.annotators.clear import (
    CLEAR_CHUNK_STEPS,
    CLEAR_MAX_CHARS,
    CLEAR_MAX_STEPS,
    annotate_clear,
    judged_steps,
)
from elad_core.elad.annotators.clear_single import annotate_clear_single, parse_clear_single
from elad_core.elad.annotators.cot import annotate_cot
from elad_core.elad.annotators.dialogue import (
    ANSWER_TURN_MAX_TOKENS,
    ANSWER_TURN_RULE,
    NO_JSON,
    PROTOCOL_IGNORED,
    AnnotationRequest,
    read_answer_turn,
    resolve_answer_turn,
)
from elad_core.elad.annotators.verdicts import parse_chunk_reply, parse_verdict

from elad_core.explanations.records import Annotation
from elad_core.errors import TransientTeacherError
from elad_core.teacher.client import TeacherClient

__all__ = [
    "ANNOTATORS", "ANSWER_TURN_MAX_TOKENS", "ANSWER_TURN_RULE", "CLEAR_CHUNK_STEPS",
    "CLEAR_MAX_CHARS", "CLEAR_MAX_STEPS", "NO_JSON", "PROTOCOL_IGNORED", "AnnotationRequest",
    "annotate_batch", "annotate_clear", "annotate_clear_single", "annotate_cot", "judged_steps",
    "parse_chunk_reply", "parse_clear_single", "parse_verdict", "read_answer_turn",
    "resolve_answer_turn",
]


ANNOTATORS = ("cot", "clear", "clear_single")


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
