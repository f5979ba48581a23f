"""The answer turn (issue #22 item 2; Kojima et al. 2022, zero-shot CoT, stage 2): a teacher
reply from which no rule reads an answer goes back once, as the assistant's message, with an
answer trigger and a short max_tokens; the answer read from that reply is recorded with rule
"answer_turn". Its tokens are counted, journaled and cached like any teacher call.

The oracle's `no_answer` style (a teacher whose solutions never state the answer) stands in for
a real model that forgets the answer line; scripted teachers check the exact messages.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from elad_core.elad import prompts

from elad_core.explanations.prompt import student_target
from elad_core.elad.annotators import (
    ANSWER_TURN_MAX_TOKENS,
    ANSWER_TURN_RULE,
    AnnotationRequest,
    annotate_batch,
    read_answer_turn,
    resolve_answer_turn,
)
from elad_core.elad.gsm8k import resolve_split
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.errors import PermanentTeacherError
from elad_core.teacher.client import TeacherClient, TeacherReply
from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.journal import ReplyJournal
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import OracleServer, read_request_log


def _gsm8k(n: int = 4) -> list[Example]:
    with resolve_split("gsm8k", "train").open(encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(n)]
    out = []
    for i, row in enumerate(rows):
        rationale, raw = split_rationale(row["answer"])
        out.append(Example(f"q{i}", row["question"], rationale, normalize_answer(raw)))
    return out


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return _gsm8k()


@pytest.fixture(scope="module")
def server(examples, tmp_path_factory):
    """An oracle whose CoT solutions hold no answer (teacher.oracle.reply_style no_answer)."""
    log = tmp_path_factory.mktemp("oracle") / "requests.jsonl"
    with OracleServer(OracleJudge(examples, style="no_answer"), request_log=log) as srv:
        srv.log_path = log
        yield srv


def _reqs(examples) -> list[AnnotationRequest]:
    return [AnnotationRequest(e.id, e.question) for e in examples]


class Scripted:
    """A teacher returning the given replies in order, recording messages and max_tokens;
    a reply that is an exception is raised."""

    model = "openai/gpt-4o-mini"  # a real teacher's name: answer_turn "auto" is on

    def __init__(self, *replies):
        self.replies, self.sent = list(replies), []

    async def chat(self, messages, max_tokens=None):
        self.sent.append((messages, max_tokens))
        reply = self.replies[min(len(self.sent), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return TeacherReply(reply, 10, 5, 0.001)


# ----------------------------------------------------------- against the oracle
def test_cot_without_an_answer_gets_one_answer_turn(server, examples):
    before = len(read_request_log(server.log_path))
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    anns = annotate_batch(client, "cot", _reqs(examples), answer_turn=True)
    assert [(a.status, a.answer, a.answer_rule, a.n_requests) for a in anns] == [
        ("ok", e.answer, ANSWER_TURN_RULE, 2) for e in examples]
    # the target: the reply's steps (it had no answer line) and the answer turn's answer
    assert anns[0].target == student_target(
        "Let me work through this.\n" + examples[0].rationale
        + "\nPutting it together, the total is", examples[0].answer)
    rows = read_request_log(server.log_path)[before:]
    assert sorted(r["mode"] for r in rows) == ["answer_turn"] * 4 + ["cot"] * 4
    # both calls are paid and counted on the annotation
    assert sum(a.prompt_tokens + a.completion_tokens for a in anns) == sum(
        r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert all(len(json.loads(a.raw)) == 2 for a in anns)


def test_auto_is_off_for_the_oracle(server, examples):
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    anns = annotate_batch(client, "cot", _reqs(examples[:1]))  # answer_turn "auto"
    # no answer turn: the reply (cut off before its answer) stays unread, nothing is guessed
    assert (anns[0].n_requests, anns[0].answer_rule, anns[0].answer) == (1, None, None)


def test_answer_turn_is_journaled_and_cached(server, examples, tmp_path):
    cache = tmp_path / "reply_cache"
    first = TeacherClient("openai/oracle", api_base=server.api_base,
                          journal=ReplyJournal(tmp_path / "a.jsonl"), reply_cache=cache)
    paid = annotate_batch(first, "cot", _reqs(examples), answer_turn=True)
    assert first.requests_sent == 8
    # the same batch again (a retried or resumed task): both turns replayed from the journal
    again = TeacherClient("openai/oracle", api_base=server.api_base,
                          journal=ReplyJournal(tmp_path / "a.jsonl"), reply_cache=cache)
    assert annotate_batch(again, "cot", _reqs(examples), answer_turn=True) == paid
    assert (again.requests_sent, again.replayed) == (0, 8)
    # another run sharing the reply cache: both turns reused, at the usage first paid
    other = TeacherClient("openai/oracle", api_base=server.api_base,
                          journal=ReplyJournal(tmp_path / "b.jsonl"), reply_cache=cache)
    assert annotate_batch(other, "cot", _reqs(examples), answer_turn=True) == paid
    assert (other.requests_sent, other.reused) == (0, 8)


def test_a_request_limit_is_part_of_the_keys(server, examples, tmp_path):
    client = TeacherClient("openai/oracle", api_base=server.api_base,
                           journal=ReplyJournal(tmp_path / "j.jsonl"), reply_cache=tmp_path / "c")
    messages = prompts.cot_messages(examples[0].question)
    asyncio.run(client.chat(messages, max_tokens=24))
    asyncio.run(client.chat(messages, max_tokens=24))  # journaled
    asyncio.run(client.chat(messages))  # the client's own limit: another request
    assert (client.requests_sent, client.replayed) == (2, 1)


# ----------------------------------------------------------- the messages sent
def test_clear_rejection_without_answer_gets_the_answer_turn():
    reply = "Step 1: No.\nIn May she sold 48 / 2 = 24 clips.\nAltogether 48 + 24 = 72 clips."
    teacher = Scripted(reply, "72")
    req = AnnotationRequest("q", "How many clips?", "48 + 2 = 50\n#### 50", 0)
    (ann,) = annotate_batch(teacher, "clear", [req])
    assert (ann.status, ann.answer, ann.answer_rule, ann.accepted_steps, ann.n_requests) == (
        "ok", "72", ANSWER_TURN_RULE, 0, 2)
    assert ann.target == ("In May she sold 48 / 2 = 24 clips.\nAltogether 48 + 24 = 72 clips.\n"
                          "#### 72")
    (turn1, limit1), (turn2, limit2) = teacher.sent
    # Kojima's second stage: the conversation, the reply as the assistant, then the trigger
    assert turn2 == [*turn1, {"role": "assistant", "content": reply},
                     {"role": "user", "content": "Therefore, the final answer (arabic numerals) is"}]
    assert (limit1, limit2) == (None, ANSWER_TURN_MAX_TOKENS)
    assert ann.prompt_tokens == 20 and ann.cost_usd == pytest.approx(0.002)


def test_label_task_trigger_and_reply():
    teacher = Scripted("The speed is 60 km/h, which is one of the choices.", "(D) 60 km/h")
    (ann,) = annotate_batch(teacher, "cot", [AnnotationRequest("q", "Q?")], family="option")
    assert (ann.status, ann.answer, ann.answer_rule) == ("ok", "D", ANSWER_TURN_RULE)
    assert teacher.sent[1][0][-1]["content"] == "Therefore, among A through E, the final answer is"


def test_answer_turn_is_asked_once_and_its_failure_is_noted():
    teacher = Scripted("No answer here.", "I cannot tell.")
    (ann,) = annotate_batch(teacher, "cot", [AnnotationRequest("q", "Q?")])
    assert (ann.status, ann.n_requests, ann.answer_rule) == ("unparsable", 2, None)
    failing = Scripted("No answer here.", PermanentTeacherError("HTTP 400: too long"))
    (ann,) = annotate_batch(failing, "cot", [AnnotationRequest("q", "Q?")])
    assert ann.status == "unparsable" and ann.error.startswith("answer turn failed:")


def test_replies_with_an_answer_and_protocol_breaches_get_no_answer_turn():
    teacher = Scripted("48 / 2 = 24\n#### 72")
    (ann,) = annotate_batch(teacher, "cot", [AnnotationRequest("q", "Q?")])
    assert (ann.n_requests, ann.answer_rule) == (1, "hash")
    # no verdict and no full solution: unparsable as before, nothing more asked
    teacher = Scripted("Hmm, let me think about whether 48 / 2 is 24.")
    (ann,) = annotate_batch(teacher, "clear", [AnnotationRequest("q", "Q?", "48 / 2 = 24", 0)])
    assert (ann.status, ann.n_requests) == ("unparsable", 1)


def test_answer_turn_off():
    teacher = Scripted("No answer here.", "72")
    (ann,) = annotate_batch(teacher, "cot", [AnnotationRequest("q", "Q?")], answer_turn=False)
    assert (ann.status, ann.n_requests) == ("unparsable", 1)


def test_a_guessed_answer_is_asked_for_and_kept_when_the_turn_says_nothing():
    """Only the flexible rule (the reply's last number) reads this reply: a guess, so the
    answer turn is asked; when it gives no answer the guess stays."""
    reply = "In May she sold 48 / 2 = 24 clips, and 48 + 24 = 72 clips in both months."
    (ann,) = annotate_batch(Scripted(reply, "72"), "cot", [AnnotationRequest("q", "Q?")])
    assert (ann.answer, ann.answer_rule, ann.n_requests) == ("72", ANSWER_TURN_RULE, 2)
    (ann,) = annotate_batch(Scripted(reply, "Sorry?"), "cot", [AnnotationRequest("q", "Q?")])
    assert (ann.status, ann.answer, ann.answer_rule, ann.n_requests) == ("ok", "72", "flexible", 2)


@pytest.mark.parametrize("text, answer", [
    ("42.", "42"), ("$1,200", "1200"), ("The final answer is 42.", "42"),
    ("\\boxed{7}", "7"), ("**18** eggs", "18"), ("5 apples, since 2 + 3 = 5.", "5"),
    ("42, because 40 + 2 = 42 and 40 + 3 = 43", "42"), ("I don't know.", None), ("", None),
])
def test_read_answer_turn(text, answer):
    assert read_answer_turn(text, "number") == answer


def test_resolve_answer_turn():
    oracle = TeacherClient("openai/oracle", api_base="http://127.0.0.1:1/v1")
    real = TeacherClient("openai/gpt-4o-mini")
    assert resolve_answer_turn("auto", oracle) is False
    assert resolve_answer_turn("auto", real) is True
    assert resolve_answer_turn(True, oracle) is True and resolve_answer_turn(False, real) is False
    assert resolve_answer_turn("auto", object()) is False  # a fake naming no model


def test_config_setting():
    assert TeacherConfig().answer_turn == "auto"
    assert TeacherConfig(answer_turn=True).answer_turn is True
    assert TeacherConfig(answer_turn="false").answer_turn is False
    with pytest.raises(ValidationError):
        TeacherConfig(answer_turn="maybe")


def test_batch_mode_sends_the_answer_turn_synchronously(server, examples, tmp_path):
    """In batch mode the first replies come from a provider batch (batch price); an answer
    turn has its own max_tokens, so it is sent synchronously (list price)."""
    before = len(read_request_log(server.log_path))
    client = TeacherClient("openai/oracle", api_base=server.api_base, mode="batch",
                           batch_poll_s=0.05, journal=ReplyJournal(tmp_path / "j.jsonl"))
    anns = annotate_batch(client, "cot", _reqs(examples), answer_turn=True)
    assert [(a.status, a.answer_rule, a.n_requests) for a in anns] == [
        ("ok", ANSWER_TURN_RULE, 2)] * len(examples)
    rows = read_request_log(server.log_path)[before:]
    assert [r["rows"] for r in rows if r.get("kind") == "batch"] == [len(examples)]
    sync = [r for r in rows if r.get("kind") is None]
    assert [r["mode"] for r in sync] == ["answer_turn"] * len(examples)
