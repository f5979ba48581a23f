"""`clear_single` (docs/design.md §2.3) and the oracle's label-task judgments (docs/design.md §2.4).

Arithmetic cases use real GSM8K rows (the first 8 of the embedded train split); label cases
use real e-SNLI and AQuA rows (the first 4 dev rows, from tests/fixtures/datasets) read with
the project's loaders.
"""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURE_DATA

from elad_core.explanations.prompt import student_target
from elad_core.elad.annotators import AnnotationRequest, annotate_batch, parse_clear_single
from elad_core.elad.gsm8k import resolve_split
from elad_core.elad.loaders import load_aqua, load_esnli
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.teacher.client import TeacherClient
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import OracleServer

GSM8K_TRAIN = resolve_split("gsm8k", "train")  # the embedded copy (elad_core/data/gsm8k)


def _gsm8k(n: int = 8) -> list[Example]:
    with GSM8K_TRAIN.open(encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(n)]
    out = []
    for i, row in enumerate(rows):
        rationale, raw = split_rationale(row["answer"])
        out.append(Example(f"q{i}", row["question"], rationale, normalize_answer(raw)))
    return out


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return (_gsm8k() + load_esnli(FIXTURE_DATA / "esnli", "dev")[:4]
            + load_aqua(FIXTURE_DATA / "aqua", "dev")[:4])


@pytest.fixture(scope="module")
def server(examples: list[Example]):
    with OracleServer(OracleJudge(examples)) as srv:
        yield srv


def _client(server) -> TeacherClient:
    return TeacherClient("openai/oracle", api_base=server.api_base)


def _target(e: Example) -> str:
    return student_target(e.rationale, e.answer)


# ----------------------------------------------------------- reply parsing
@pytest.mark.parametrize("text, expected", [
    ('{"first_wrong_step": 2, "steps": ["a = 1", "b = 2"], "answer": "7"}', (1, ["a = 1", "b = 2"], "7")),
    ('```json\n{"first_wrong_step": null, "steps": [], "answer": "$1,200"}\n```', (3, [], "1200")),
    ('Sure: {"first_wrong_step": 1, "steps": "x\\ny", "answer": "4"}', (0, ["x", "y"], "4")),
])
def test_parse_clear_single_reads_lenient_json(text, expected):
    assert parse_clear_single(text, 3, "number") == expected


@pytest.mark.parametrize("text", [
    "No JSON here. #### 5",
    '{"first_wrong_step": 4, "steps": [], "answer": "5"}',  # only 3 student steps
    '{"first_wrong_step": 0, "steps": [], "answer": "5"}',  # 1-based
    '{"first_wrong_step": true, "steps": [], "answer": "5"}',
    '{"first_wrong_step": 1, "steps": [1, 2], "answer": "5"}',
    '{"first_wrong_step": 1, "steps": ["a"], "answer": "five"}',  # not a number
    '{"first_wrong_step": 1, "steps": ["a"]',
])
def test_parse_clear_single_rejects_what_it_cannot_trust(text):
    assert parse_clear_single(text, 3, "number") is None


# ----------------------------------------------------------- arithmetic (GSM8K)
def test_clear_single_gold_explanation_is_kept_whole(server, examples):
    gsm = examples[:8]
    reqs = [AnnotationRequest(e.id, e.question, e.rationale, 0) for e in gsm]
    anns = annotate_batch(_client(server), "clear_single", reqs)
    # every student (= gold) step is right: first_wrong_step null, nothing to add, one call each
    assert [a.target for a in anns] == [_target(e) for e in gsm]
    assert [a.accepted_steps for a in anns] == [len(e.rationale.split("\n")) for e in gsm]
    assert [a.n_requests for a in anns] == [1] * len(gsm)
    assert {a.annotator for a in anns} == {"clear_single"}


def test_clear_single_wrong_second_step_matches_clear(server, examples):
    betty = examples[2]  # gold results 50, 30, 5; answer 5
    gold = betty.rationale.split("\n")
    explanation = f"{gold[0]}\nHer grandparents gave her 15 * 3 = $45.\nSo she needs $10.\n#### 10"
    req = AnnotationRequest(betty.id, betty.question, explanation, 1, "10")
    (single,) = annotate_batch(_client(server), "clear_single", [req])
    (multi,) = annotate_batch(_client(server), "clear", [req])
    # step 1 right, step 2 (45: no gold result) wrong -> student step 1 + gold lines 1, 2 + "#### 5"
    assert (single.status, single.accepted_steps, single.n_requests) == ("ok", 1, 1)
    assert single.target == _target(betty) == multi.target
    assert single.revised_sample == 1
    # same record; since prompt v2 CLEAR judges the steps in one request too ("Step 1: Yes.
    # ...", "Step 2: No." + the rest), at most a few tokens dearer than the JSON variant
    assert (multi.n_requests, multi.accepted_steps) == (1, 1)
    single_tokens = single.prompt_tokens + single.completion_tokens
    assert single_tokens <= multi.prompt_tokens + multi.completion_tokens < 1.25 * single_tokens


def test_clear_single_without_steps_falls_back_to_cot(server, examples):
    e = examples[0]
    (ann,) = annotate_batch(_client(server), "clear_single", [AnnotationRequest(e.id, e.question, "#### 3")])
    assert (ann.annotator, ann.accepted_steps, ann.target) == ("clear_single", 0, _target(e))


def test_unparsable_clear_single_reply_is_recorded_not_trained():
    class Client:  # a teacher that ignores the JSON instruction
        requests_sent = replayed = 0

        async def chat(self, messages):
            from elad_core.teacher.client import TeacherReply
            return TeacherReply("The second step is wrong, the answer is 5.", 30, 12, 0.0)

    (ann,) = annotate_batch(Client(), "clear_single", [AnnotationRequest("q", "Q?", "a\nb\n#### 4")])
    assert (ann.status, ann.target, json.loads(ann.raw)) == (
        "unparsable", "", ["The second step is wrong, the answer is 5."])


# ----------------------------------------------------------- label tasks
@pytest.mark.parametrize("annotator", ["clear", "clear_single"])
def test_label_task_right_answer_keeps_the_student_reasoning(server, examples, annotator):
    nli = examples[8]  # e-SNLI dev row 0
    mine = "The man is outside so he is not in a building."
    req = AnnotationRequest(nli.id, nli.question, f"{mine}\n#### {nli.answer}", 0, nli.answer)
    (ann,) = annotate_batch(_client(server), annotator, [req], family="label")
    # the student's answer equals the gold label: every step accepted, answer = gold
    assert (ann.status, ann.accepted_steps, ann.answer) == ("ok", 1, nli.answer)
    assert ann.target == student_target(mine, nli.answer)


@pytest.mark.parametrize("annotator", ["clear", "clear_single"])
@pytest.mark.parametrize("index, family", [(8, "label"), (12, "option")])
def test_label_task_wrong_answer_gets_gold_explanation(server, examples, annotator, index, family):
    e = examples[index]
    wrong = next(x for x in (["entailment", "neutral", "contradiction"] if family == "label"
                             else list("ABCDE")) if x != e.answer)
    req = AnnotationRequest(e.id, e.question, f"Some reasoning.\nMore of it.\n#### {wrong}", 0, wrong)
    (ann,) = annotate_batch(_client(server), annotator, [req], family=family)
    # rejected at step 1: the target is the gold explanation and label
    assert (ann.status, ann.accepted_steps, ann.answer) == ("ok", 0, e.answer)
    assert ann.target == _target(e)
