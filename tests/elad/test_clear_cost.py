"""CLEAR that a real student can afford (issue #21 item 3; docs/design.md §2.3).

Since prompt v2 a CLEAR turn is one stateless request: the question, the steps the teacher
accepted so far and the next chunk of student steps; the teacher judges them in order
("Step n: Yes. <its version>" ... "Step n: No." + the rest). The student's explanation is
judged up to its answer line, repeated lines once, capped. The real-student cases use
explanations SmolLM2-135M-Instruct sampled for the first 16 GSM8K train questions
(tests/fixtures/smollm2_gsm8k_explanations.json), against the oracle teacher.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import FIXTURES

from elad_core.budget import BatchGate, Budget, Usage
from elad_core.elad.cost import estimator_for, gold_solutions
from elad_core.elad import prompts
from elad_core.explanations.prompt import student_target
from elad_core.elad.annotators import (
    AnnotationRequest,
    annotate_batch,
    annotate_clear,
    judged_steps,
    parse_chunk_reply,
)
from elad_core.elad.gsm8k import resolve_split
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.teacher.client import TeacherClient, TeacherReply
from elad_core.teacher.config import TeacherConfig
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import OracleServer, read_request_log

SMOLLM2 = json.loads((FIXTURES / "smollm2_gsm8k_explanations.json").read_text(encoding="utf-8"))


def _gsm8k(n: int = 16) -> list[Example]:
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
    log = tmp_path_factory.mktemp("oracle") / "requests.jsonl"
    with OracleServer(OracleJudge(examples), request_log=log) as srv:
        srv.log_path = log
        yield srv


def _client(server) -> TeacherClient:
    return TeacherClient("openai/oracle", api_base=server.api_base)


def _tokens(anns) -> int:
    return sum(a.prompt_tokens + a.completion_tokens for a in anns)


class Recorder:
    """A scripted teacher that records the messages of every call."""

    def __init__(self, *replies: str):
        self.replies, self.sent = list(replies), []

    async def chat(self, messages, max_tokens=None):
        self.sent.append((messages, max_tokens))
        return TeacherReply(self.replies[min(len(self.sent), len(self.replies)) - 1], 10, 5, 0.0)


# ----------------------------------------------------------- which steps are judged
def test_judged_steps_stop_at_the_answer_line_and_skip_repeats():
    # SmolLM2's plain-format sample for GSM8K train row 22 (abridged): an answer, then chatter
    text = ("Step-by-step reasoning:\n1. Sam's last name has three fewer letters.\n"
            "2. If Bobbie took two letters off, two letters are left.\n3. The answer is 2.\n\n"
            "A: 1.\n\nMy answer is 2.\n\nA: 1.\n\nA: 1.")
    assert judged_steps(text) == ["Step-by-step reasoning:", "1. Sam's last name has three fewer letters.",
                                  "2. If Bobbie took two letters off, two letters are left.",
                                  "3. The answer is 2."]  # reasoning ending in an answer: kept, last
    assert judged_steps("a = 1\nA = 1\n  a =  1\nb = 2\n#### 2\nc = 3") == ["a = 1", "b = 2"]
    assert judged_steps("x = 1\nThe answer is: 30\ny = 2") == ["x = 1"]  # only an answer: cut
    assert judged_steps("The answer is: 3") == []  # nothing to judge: CLEAR falls back to CoT
    many = "\n".join(f"step {i} = {i}" for i in range(20))
    assert len(judged_steps(many)) == 8 and len(judged_steps(many, max_steps=3)) == 3
    long = ["x" * 400, "y" * 300, "z"]
    assert judged_steps("\n".join(long)) == long[:1]  # 600 characters at most; the first always


# ----------------------------------------------------------- reading a chunk reply
@pytest.mark.parametrize("reply, expected", [
    ("Step 1: Yes. a = 1\nStep 2: No.\nb = 3\n#### 3", (["a = 1"], True, "\nb = 3\n#### 3")),
    ("**Step 1:** Correct — a = 1\n**Step 2:** Yes.\nb = 2\n#### 2",
     (["a = 1", "b = 2"], False, "#### 2")),  # own version on the next line
    ("Let me check each step.\n\nStep 1: Yes. a = 1\nStep 2 is wrong: b = 3 is not 2.\nb = 2\n#### 2",
     (["a = 1"], True, "b = 3 is not 2.\nb = 2\n#### 2")),
    ("1. Yes. a = 1\n2. Yes\n#### 2", (["a = 1", None], False, "#### 2")),
    ("Yes, that's right.\nIn May she sold 24.\nmore", (["In May she sold 24."], False, "more")),
    ("No. The rest\n#### 5", ([], True, "The rest\n#### 5")),
])
def test_chunk_replies_in_real_layouts(reply, expected):
    assert parse_chunk_reply(reply, 2) == expected


@pytest.mark.parametrize("reply", ["", "Let me solve it.\n#### 5", "1. a = 1\n2. b = 2"])
def test_chunk_reply_without_any_verdict(reply):
    assert parse_chunk_reply(reply, 2) is None


# ----------------------------------------------------------- the stateless turns
def test_clear_judges_a_gold_explanation_in_one_request(server, examples):
    gold = examples[:8]
    reqs = [AnnotationRequest(e.id, e.question, e.rationale, 0) for e in gold]
    anns = annotate_batch(_client(server), "clear", reqs)
    assert [a.target for a in anns] == [student_target(e.rationale, e.answer) for e in gold]
    assert [a.accepted_steps for a in anns] == [len(e.rationale.split("\n")) for e in gold]
    assert [a.n_requests for a in anns] == [1] * 8


def test_chunks_are_stateless_requests(server, examples):
    betty = examples[2]  # 3 gold steps
    steps = betty.rationale.split("\n")
    teacher = Recorder(f"Step 1: Yes. {steps[0]}\nStep 2: Yes. {steps[1]}",
                       f"Step 3: Yes. {steps[2]}\n#### 5")
    req = AnnotationRequest(betty.id, betty.question, betty.rationale, 0)
    ann = asyncio.run(annotate_clear(teacher, req, chunk_steps=2))
    assert (ann.status, ann.accepted_steps, ann.n_requests, ann.target) == (
        "ok", 3, 2, student_target(betty.rationale, "5"))
    first, second = (m for m, _ in teacher.sent)
    # each turn: system + ONE user message; the second carries the accepted steps, numbered on
    assert [m["role"] for m in first] == [m["role"] for m in second] == ["system", "user"]
    assert prompts.clear_chunk_of(first[1]["content"]) == ([], steps[:2], False)
    assert prompts.clear_chunk_of(second[1]["content"]) == (steps[:2], steps[2:], True)
    assert f"Step 3: {steps[2]}" in second[1]["content"]
    # the oracle answers the same turns the same way
    (oracle,) = annotate_batch(_client(server), "clear", [req])
    assert oracle.target == ann.target


def test_turn_limit_and_closing_turn(examples):
    betty = examples[2]
    req = AnnotationRequest(betty.id, betty.question, betty.rationale, 0)
    # one step per turn, bare verdicts without an answer: 2 turns allowed -> one chunk turn
    # (marked last) and the closing turn asking to finish
    teacher = Recorder("Yes.", "Yes. And so she needs 5 more.\n#### 5")
    ann = asyncio.run(annotate_clear(teacher, req, max_turns=2, chunk_steps=1))
    assert (ann.status, ann.n_requests, ann.accepted_steps, ann.answer) == ("ok", 2, 1, "5")
    last = teacher.sent[-1][0][1]["content"]
    assert prompts.clear_finish_of(last) == [betty.rationale.split("\n")[0]]


# ----------------------------------------------------------- a real student's explanations
@pytest.mark.parametrize("fmt", ["plain", "chat"])
def test_clear_costs_at_most_twice_cot_on_smollm2(server, examples, fmt):
    reqs = [AnnotationRequest(e.id, e.question, text, 0)
            for e, text in zip(examples, SMOLLM2[fmt], strict=True)]
    cot = annotate_batch(_client(server), "cot", reqs)
    clear = annotate_batch(_client(server), "clear", reqs)
    assert {a.status for a in clear} == {"ok"}
    assert _tokens(clear) <= 2 * _tokens(cot)  # the old dialogue: 5.7x (plain), 10.7x (chat)
    assert max(a.n_requests for a in clear) <= 2
    assert sum(a.accepted_steps for a in clear) > 0  # the student's reasoning is still judged
    # the budget's estimates come within 25% of the spend: a priori (the oracle's completion
    # length from the gold solutions) and measured (the first half as an earlier round)
    est = estimator_for(TeacherConfig(), [e.question for e in examples],
                        solutions=gold_solutions(examples))
    for name, anns in (("cot", cot), ("clear", clear)):
        prior = est.a_priori(name).teacher_tokens * len(anns)
        assert 0.75 <= prior / _tokens(anns) <= 1.25, (name, prior, _tokens(anns))
        first = [{"annotator": name, "selected": 8, "annotated": 8,
                  "teacher_tokens": _tokens(anns[:8]), "cost_usd": 0.0}]
        measured = est.per_annotation(name, first)[0].teacher_tokens * 8
        assert 0.75 <= measured / _tokens(anns[8:]) <= 1.25, (name, measured, _tokens(anns[8:]))
    after_cot = est.per_annotation("clear", [{"annotator": "cot", "selected": 16, "annotated": 16,
                                              "teacher_tokens": _tokens(cot), "cost_usd": 0.0}])
    assert 0.75 <= after_cot[0].teacher_tokens * 16 / _tokens(clear) <= 1.25


def test_batch_gate_keeps_a_clear_round_within_its_budget(server, examples):
    """The round's batches through BatchGate (docs/design.md §3.4) with the new turns: the
    spend never passes the budget, and the gate stops before the pool is done."""
    reqs = [AnnotationRequest(e.id, e.question, text, 0)
            for e, text in zip(examples, SMOLLM2["chat"] + SMOLLM2["plain"], strict=False)]
    full = _tokens(annotate_batch(_client(server), "clear", reqs))
    est = estimator_for(TeacherConfig(), [e.question for e in examples])
    for share in (0.3, 0.6, 0.9):
        budget = Budget(max_round_teacher_tokens=int(full * share))
        gate = BatchGate(budget, Usage(), est.per_annotation("clear", [])[0])
        for i in range(0, len(reqs), 4):
            if not gate.allows(4):
                break
            anns = annotate_batch(_client(server), "clear", reqs[i:i + 4])
            gate.add(_tokens(anns), 0.0, len(anns))
        assert gate.stop is not None and gate.spent.teacher_tokens <= full * share


def test_oracle_request_log_counts_one_turn_per_request(server, examples):
    before = len(read_request_log(server.log_path))
    reqs = [AnnotationRequest(e.id, e.question, text, 0)
            for e, text in zip(examples[:4], SMOLLM2["chat"], strict=False)]
    anns = annotate_batch(_client(server), "clear", reqs)
    rows = read_request_log(server.log_path)[before:]
    assert len(rows) == sum(a.n_requests for a in anns)
    assert {(r["mode"], r["turn"], r["status"]) for r in rows} == {("clear", 1, 200)}
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows) == _tokens(anns)
