"""Teacher fan-out over worker processes (issue #7): same results as the in-process path.

`elad_core.elad.fanout.annotate_requests` with processes > 1 must return the very
annotations (targets, tokens, costs, request counts) the single-process `annotate_batch`
returns, journal every paid reply once, map errors the same way, and send each request
once. Real HTTP through litellm against the oracle server (a test double); no timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elad_core.elad.annotators import AnnotationRequest
from elad_core.elad.gsm8k import resolve_split
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.errors import TeacherAuthError, TransientTeacherError
from elad_core.teacher.client import TeacherClient
from elad_core.elad.fanout import annotate_requests
from elad_core.teacher.journal import ReplyJournal
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import FaultConfig, OracleServer, read_request_log

GSM8K_TRAIN = resolve_split("gsm8k", "train")  # the embedded copy (elad_core/data/gsm8k)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    with GSM8K_TRAIN.open(encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(12)]
    out = []
    for i, row in enumerate(rows):
        rationale, raw = split_rationale(row["answer"])
        out.append(Example(f"q{i}", row["question"], rationale, normalize_answer(raw or "")))
    return out


def _requests(examples: list[Example], annotator: str) -> list[AnnotationRequest]:
    """CoT: the questions. CLEAR: the gold steps with every third one's result made wrong,
    so dialogues end at different turns (some all-"yes", some "no" part-way)."""
    if annotator == "cot":
        return [AnnotationRequest(e.id, e.question) for e in examples]
    out = []
    for i, e in enumerate(examples):
        steps = e.rationale.split("\n")
        if i % 3 == 1:
            steps[-1] = steps[-1].replace(steps[-1].split()[-1], "9999")
        out.append(AnnotationRequest(e.id, e.question, "\n".join(steps) + "\n#### 1", 0))
    return out


def _annotate(api_base: str, journal: Path, annotator: str, reqs, processes: int, **kw):
    client = TeacherClient("openai/oracle", api_base=api_base, max_concurrency=4,
                           journal=ReplyJournal(journal), **kw)
    return annotate_requests(client, annotator, reqs, "number", 16, processes), client


@pytest.mark.parametrize("annotator", ["cot", "clear"])
def test_two_processes_equal_one(examples, tmp_path, annotator):
    reqs = _requests(examples, annotator)
    judge = OracleJudge(examples)
    runs = {}
    for p in (1, 2):
        log = tmp_path / f"requests_{p}.jsonl"
        with OracleServer(judge, request_log=log) as srv:
            anns, client = _annotate(srv.api_base, tmp_path / f"j{p}.jsonl", annotator, reqs, p)
            # a second pass over the same journal replays every reply: no request at all
            again, replay = _annotate(srv.api_base, tmp_path / f"j{p}.jsonl", annotator, reqs, p)
        runs[p] = (anns, client.requests_sent, read_request_log(log))
        assert again == anns and replay.requests_sent == 0
        assert replay.replayed == client.requests_sent
        lines = (tmp_path / f"j{p}.jsonl").read_text().splitlines()
        assert len(lines) == client.requests_sent  # each paid reply journaled once, whole
        assert all(json.loads(line)["text"] for line in lines)
    (one, sent1, log1), (two, sent2, log2) = runs[1], runs[2]
    # identical records: targets, statuses, tokens, cost, request counts, in request order
    assert two == one and [a.question_id for a in two] == [r.question_id for r in reqs]
    assert sent1 == sent2 == sum(a.n_requests for a in one) == len(log1) == len(log2)
    assert sorted(r["messages_sha"] for r in log1) == sorted(r["messages_sha"] for r in log2)
    assert {a.status for a in one} == {"ok"}
    if annotator == "clear":  # the wrong steps made some revisions stop early
        assert len({a.accepted_steps for a in one}) > 1


def test_transient_failures_match_in_process(examples, tmp_path):
    """Faults are drawn from each request's own messages (seeded), so the same questions
    fail whichever process sends them; finished ones come back in `completed`."""
    reqs = _requests(examples, "cot")
    judge = OracleJudge(examples)
    caught = {}
    for p in (1, 2):
        with OracleServer(judge, faults=FaultConfig(error_rate=0.4, seed=3)) as srv:
            with pytest.raises(TransientTeacherError) as exc:
                _annotate(srv.api_base, tmp_path / f"j{p}.jsonl", "cot", reqs, p)
            assert srv.app.state.requests == len(reqs)  # one request each, none retried
        caught[p] = exc.value
    ok1 = sorted(a.question_id for a in caught[1].completed)
    ok2 = sorted(a.question_id for a in caught[2].completed)
    assert ok1 == ok2 and 0 < len(ok1) < len(reqs)
    failed = len(reqs) - len(ok1)
    for exc in caught.values():
        assert f"{failed} of {len(reqs)} teacher requests failed transiently" in str(exc)


def test_rejected_key_stops_the_batch_from_a_worker(examples, tmp_path):
    judge = OracleJudge(examples)
    with OracleServer(judge, api_key="right-key-123") as srv:
        with pytest.raises(TeacherAuthError, match="401"):
            _annotate(srv.api_base, tmp_path / "j.jsonl", "cot", _requests(examples, "cot"), 2,
                      api_key="wrong-key-456")


def test_one_process_or_a_throttle_stays_in_process(examples, tmp_path, monkeypatch):
    import elad_core.elad.fanout as tp

    monkeypatch.setattr(tp, "_run", lambda jobs: pytest.fail("should not use workers"))
    judge = OracleJudge(examples[:2])
    with OracleServer(judge) as srv:
        reqs = _requests(examples[:2], "cot")
        anns, _ = _annotate(srv.api_base, tmp_path / "a.jsonl", "cot", reqs, 1)

        async def throttle(tokens: int) -> None:
            return None

        anns2, _ = _annotate(srv.api_base, tmp_path / "b.jsonl", "cot", reqs, 4,
                             throttle=throttle)
        assert anns == anns2 and len(anns) == 2
