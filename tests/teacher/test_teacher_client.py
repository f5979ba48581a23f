"""TeacherClient + annotators against a running oracle server: real HTTP through litellm.

docs/design.md §2.3 (annotators), §2.4 (oracle teacher), §3 (transient vs permanent failures).
Examples: the first rows of the embedded GSM8K train split.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from elad_core.elad import prompts

from elad_core.explanations.prompt import student_target
from elad_core.elad.annotators import AnnotationRequest, annotate_batch, parse_verdict
from elad_core.elad.gsm8k import resolve_split
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.errors import ConfigError, TransientTeacherError
from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import TeacherConfig
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import FaultConfig, OracleServer, read_request_log

GSM8K_TRAIN = resolve_split("gsm8k", "train")  # the embedded copy (elad_core/data/gsm8k)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    with GSM8K_TRAIN.open(encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(8)]
    return [Example(f"q{i}", row["question"], *_gold(row["answer"])) for i, row in enumerate(rows)]


def _gold(solution: str) -> tuple[str, str | None]:
    rationale, raw = split_rationale(solution)
    return rationale, normalize_answer(raw or "")


@pytest.fixture(scope="module")
def judge(examples: list[Example]) -> OracleJudge:
    return OracleJudge(examples)


@pytest.fixture(scope="module")
def server(judge: OracleJudge, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("oracle") / "requests.jsonl"
    with OracleServer(judge, request_log=log) as srv:
        srv.log_path = log
        yield srv


def _target(e: Example) -> str:
    return student_target(e.rationale, e.answer)


def _requests(examples: list[Example], explanations: list[str | None] | None = None):
    explanations = explanations or [None] * len(examples)
    return [AnnotationRequest(e.id, e.question, x, 0 if x else None)
            for e, x in zip(examples, explanations, strict=True)]


def test_cot_annotations_equal_gold(server, examples):
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    anns = annotate_batch(client, "cot", _requests(examples))
    # The oracle returns each gold solution; the target is its steps + "#### answer".
    assert [a.target for a in anns] == [_target(e) for e in examples]
    assert {a.status for a in anns} == {"ok"}
    assert all(a.prompt_tokens > 0 and a.completion_tokens > 0 for a in anns)
    assert [a.n_requests for a in anns] == [1] * len(examples)
    assert client.requests_sent == len(examples)


def test_clear_with_gold_explanation_accepts_every_step(server, examples):
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    anns = annotate_batch(client, "clear", _requests(examples, [e.rationale for e in examples]))
    assert [a.target for a in anns] == [_target(e) for e in examples]
    n_steps = [len(e.rationale.split("\n")) for e in examples]
    # Every step accepted in ONE request (prompt v2: one chunk holds all the judged steps,
    # "Step n: Yes. <gold line>" each, and the last chunk's reply finishes the solution).
    assert [a.accepted_steps for a in anns] == n_steps
    assert [a.n_requests for a in anns] == [1] * len(examples)
    assert [len(json.loads(a.raw)) for a in anns] == [1] * len(examples)
    assert all(a.prompt_tokens > 0 and a.completion_tokens > 0 for a in anns)


def test_clear_with_wrong_second_step(server, examples):
    betty = examples[2]  # gold results 50, 30, 5; answer 5
    gold = betty.rationale.split("\n")
    explanation = f"{gold[0]}\nHer grandparents gave her 15 * 3 = $45.\nSo she needs $10.\n#### 10"
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    (ann,) = annotate_batch(client, "clear", _requests([betty], [explanation]))
    # Step 1 accepted (ŝ1 = gold line 0); 15 * 3 = 45 is true but 45 is no gold result or
    # question number -> "Step 2: No." + gold lines 1, 2 + "#### 5", in the same single
    # request: the target is the gold solution.
    assert (ann.status, ann.accepted_steps, ann.n_requests) == ("ok", 1, 1)
    assert ann.target == _target(betty) and ann.answer == "5"


def test_clear_without_explanation_falls_back_to_cot(server, examples):
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    (ann,) = annotate_batch(client, "clear", _requests(examples[:1]))
    assert (ann.annotator, ann.accepted_steps, ann.n_requests) == ("clear", 0, 1)
    assert ann.target == _target(examples[0])


def test_unknown_question_is_a_failed_annotation(server, examples):
    client = TeacherClient("openai/oracle", api_base=server.api_base)
    stranger = AnnotationRequest("x", "What is the airspeed of an unladen swallow?")
    anns = annotate_batch(client, "cot", [stranger, *_requests(examples[:1])])
    # HTTP 400 is permanent: recorded as failed, the rest of the batch still succeeds.
    assert anns[0].status == "failed" and "unknown question" in anns[0].error
    assert anns[0].target == "" and anns[1].status == "ok"


def test_server_errors_make_the_batch_transient(judge, examples):
    with OracleServer(judge, faults=FaultConfig(error_rate=1.0)) as srv:
        client = TeacherClient("openai/oracle", api_base=srv.api_base)
        with pytest.raises(TransientTeacherError, match="3 of 3 teacher requests"):
            annotate_batch(client, "cot", _requests(examples[:3]))
        # litellm's retries are off: exactly one request per question reached the server.
        assert client.requests_sent == srv.app.state.requests == 3
        assert srv.app.state.completions == 0


def test_rate_limit_carries_retry_after(judge, examples, tmp_path):
    log = tmp_path / "requests.jsonl"
    faults = FaultConfig(rate_limit_rate=1.0, retry_after_s=2.5)
    with OracleServer(judge, faults=faults, request_log=log) as srv:
        client = TeacherClient("openai/oracle", api_base=srv.api_base)
        with pytest.raises(TransientTeacherError) as caught:
            asyncio.run(client.chat(prompts.cot_messages(examples[0].question)))
        assert caught.value.retry_after_s == 2.5  # the server's Retry-After header
        with pytest.raises(TransientTeacherError) as caught:
            annotate_batch(client, "cot", _requests(examples[:2]))
        assert caught.value.retry_after_s == 2.5  # the largest hint of the failed requests
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in rows] == [429, 429, 429]
    assert rows[0]["question_id"] == "q0" and rows[0]["turn"] == 1


def test_request_log_counts_every_request(judge, examples, tmp_path):
    log = tmp_path / "requests.jsonl"
    with OracleServer(judge, request_log=log) as srv:
        client = TeacherClient("openai/oracle", api_base=srv.api_base)
        betty = examples[2]
        annotate_batch(client, "clear", _requests([betty], [betty.rationale]))
        stranger = AnnotationRequest("x", "What is the airspeed of an unladen swallow?")
        annotate_batch(client, "cot", [stranger])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    # Betty: her 3 steps judged in one stateless request, then the unknown question's 400.
    assert [(r["question_id"], r["mode"], r["turn"], r["status"]) for r in rows] == [
        ("q2", "clear", 1, 200), (None, None, 1, 400),
    ]
    assert all(set(r) == {"ts", "question_id", "mode", "turn", "status", "fault", "completion",
                          "messages_sha", "prompt_tokens", "completion_tokens"} for r in rows)
    # every 200 delivered a completion; the unknown question's 400 did not
    assert [r["completion"] for r in rows] == [True, False]


def _max_in_flight(rows: list[dict], latency_s: float) -> int:
    """Most requests the oracle held at once: each was in flight for the `latency_s` before
    its log line (written once its outcome was decided); 0.1 s of slack on each side."""
    spans = [(r["ts"] - latency_s + 0.1, r["ts"] - 0.1) for r in rows]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


@pytest.mark.parametrize("max_concurrency", [1, 2])
def test_concurrency_is_bounded(judge, examples, tmp_path, max_concurrency):
    """max_concurrency requests are in flight at once, never more: the 1 case shows the
    measure tells one at a time from two (a client sending serially fails the 2 case)."""
    latency, log = 0.4, tmp_path / "requests.jsonl"
    with OracleServer(judge, faults=FaultConfig(latency_s=latency), request_log=log) as srv:
        client = TeacherClient("openai/oracle", api_base=srv.api_base,
                               max_concurrency=max_concurrency)
        start = time.monotonic()
        annotate_batch(client, "cot", _requests(examples[:4]))
        wall = time.monotonic() - start
    rows = read_request_log(log)
    assert len(rows) == 4 and all(r["status"] == 200 for r in rows)
    assert _max_in_flight(rows, latency) == max_concurrency
    # 4 requests of >= latency each, max_concurrency at a time: 4 / max_concurrency rounds
    assert wall >= latency * 4 / max_concurrency


def test_connection_refused_is_transient(judge, examples):
    with OracleServer(judge) as srv:
        api_base = srv.api_base
    client = TeacherClient("openai/oracle", api_base=api_base, timeout_s=5)
    with pytest.raises(TransientTeacherError):
        asyncio.run(client.chat(prompts.cot_messages(examples[0].question)))


def test_from_config(monkeypatch):
    client = TeacherClient.from_config(TeacherConfig(), api_base="http://127.0.0.1:9/v1")
    assert (client.model, client.api_base) == ("openai/oracle", "http://127.0.0.1:9/v1")
    assert client.max_concurrency == TeacherConfig().max_concurrency
    monkeypatch.delenv("ELAD_TEST_MISSING_KEY", raising=False)
    cfg = TeacherConfig(model="openai/gpt-4o-mini", api_key_env="ELAD_TEST_MISSING_KEY")
    with pytest.raises(ConfigError, match="ELAD_TEST_MISSING_KEY"):
        TeacherClient.from_config(cfg, api_base=None)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes.\nstep", ("yes", "step")),
        ("**No**: rest", ("no", "rest")),  # markdown and punctuation around the verdict
        ("yes, step", ("yes", "step")),
        ("Nothing to add", (None, "Nothing to add")),  # "No" must be a whole word
    ],
)
def test_parse_verdict(reply, expected):
    assert parse_verdict(reply) == expected


def test_openai_compatible_endpoints(server, examples):
    with httpx.Client(base_url=server.api_base, trust_env=False, timeout=10) as http:
        assert http.get("/models").json()["data"][0]["id"] == "oracle"
        body = http.post("/chat/completions", json={
            "model": "oracle", "messages": prompts.cot_messages(examples[0].question)}).json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == _target(examples[0])
        assert body["choices"][0]["finish_reason"] == "stop"
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        bad = http.post("/chat/completions", content=b"not json")
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(server.api_base.removesuffix("/v1") + "/health").json()["status"] == "ok"


def test_replies_are_journaled_in_groups(server, examples, tmp_path, monkeypatch):
    """Issue #7: concurrent replies share an fsync (group commit) and each is still on disk,
    once, before it is used; a second pass is served from the journal alone."""
    from elad_core.teacher.journal import ReplyJournal

    calls: list[int] = []
    put_many = ReplyJournal.put_many

    def slow_disk(self, replies):  # a slow fsync lets the other replies queue behind it
        calls.append(len(replies))
        time.sleep(0.1)
        put_many(self, replies)

    monkeypatch.setattr(ReplyJournal, "put_many", slow_disk)
    path = tmp_path / "journal.jsonl"
    client = TeacherClient("openai/oracle", api_base=server.api_base, max_concurrency=8,
                           journal=ReplyJournal(path))
    anns = annotate_batch(client, "cot", _requests(examples))
    assert sum(calls) == len(examples) == client.requests_sent  # every reply, once
    assert len(calls) < len(examples)  # ... in fewer fsyncs than replies
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(examples) and len({r["key"] for r in lines}) == len(examples)
    again = TeacherClient("openai/oracle", api_base=server.api_base, journal=ReplyJournal(path))
    assert annotate_batch(again, "cot", _requests(examples)) == anns
    assert (again.requests_sent, again.replayed) == (0, len(examples))


def test_oracle_is_priced_at_its_simulated_prices():
    """The oracle (a test double) is billed at ORACLE_SIMULATED_PRICES, also when built
    directly, and litellm's price map knows them (its per-call cost lookup is a hit)."""
    import litellm

    from elad_core.teacher.client import ORACLE_SIMULATED_PRICES

    client = TeacherClient("openai/oracle", api_base="http://127.0.0.1:9/v1")
    per_in, per_out = ORACLE_SIMULATED_PRICES
    # 1M prompt + 1M completion tokens cost the two list prices (USD per 1M tokens)
    assert client.price_usd(1e6, 1e6) == pytest.approx(per_in + per_out)
    cost_in, cost_out = litellm.cost_per_token(model="openai/oracle", prompt_tokens=1_000_000,
                                               completion_tokens=1_000_000)
    assert (cost_in, cost_out) == (pytest.approx(per_in), pytest.approx(per_out))


def test_worker_settings_resolve_the_key(monkeypatch):
    monkeypatch.setenv("ELAD_TEST_KEY", "sk-test-0123456789")
    client = TeacherClient("openai/gpt-4o-mini", api_key_env="ELAD_TEST_KEY", max_concurrency=8)
    settings = client.worker_settings(max_concurrency=3)
    # the worker gets the key itself (no environment needed) and its share of the concurrency
    assert settings.api_key == "sk-test-0123456789" and settings.max_concurrency == 3
    assert not hasattr(settings, "journal") and not hasattr(settings, "throttle")
    assert "sk-test-0123456789" not in repr(settings)
    twin = TeacherClient(settings=settings)
    assert (twin.model, twin.timeout_s, twin.max_tokens) == (client.model, None, 512)
