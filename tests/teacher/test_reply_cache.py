"""The teacher reply cache shared across runs (elad_core.teacher.reply_cache, issue #15)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from conftest import tiny_config

from elad_core.teacher.reply_cache import ReplyCache, cache_key

MSG = [{"role": "user", "content": "What is 2 + 2?"}]


def test_key_covers_what_decides_a_reply():
    base = cache_key("openai/gpt-4o-mini", "", MSG, 0.0, 512)
    assert cache_key("openai/gpt-4o-mini", "", MSG, 0.0, 512) == base
    others = [cache_key("openai/gpt-4o", "", MSG, 0.0, 512),
              cache_key("openai/gpt-4o-mini", "http://127.0.0.1:8000/v1", MSG, 0.0, 512),
              cache_key("openai/gpt-4o-mini", "", [{"role": "user", "content": "2+3?"}], 0.0, 512),
              cache_key("openai/gpt-4o-mini", "", MSG, 0.7, 512),
              cache_key("openai/gpt-4o-mini", "", MSG, 0.0, 256),
              cache_key("openai/gpt-4o-mini", "", MSG, 0.0, 512, seed=1)]
    assert base not in others and len(set(others)) == len(others)


def test_put_get_and_a_torn_entry_is_a_miss(tmp_path):
    cache = ReplyCache(tmp_path / "c")
    key = cache_key("m", "", MSG, 0.0, 16)
    assert cache.get(key) is None
    reply = {"text": "4", "prompt_tokens": 9, "completion_tokens": 1, "cost_usd": 1e-5}
    cache.put(key, reply)
    cache.put(key, {**reply, "text": "5"})  # an existing entry is kept
    assert ReplyCache(tmp_path / "c").get(key) == reply and cache.hits == 0
    assert cache.get(key) == reply and cache.hits == 1
    torn = cache_key("m", "", MSG, 0.0, 17)
    (tmp_path / "c" / torn[:2]).mkdir(parents=True, exist_ok=True)
    (tmp_path / "c" / torn[:2] / f"{torn}.json").write_text('{"text": "4", "prompt')
    assert cache.get(torn) is None
    assert not list((tmp_path / "c").rglob(".tmp-*"))


def test_concurrent_writers_leave_one_whole_entry(tmp_path):
    cache, key = ReplyCache(tmp_path), cache_key("m", "", MSG, 0.0, 16)
    replies = [{"text": str(i) * 1000, "prompt_tokens": i, "completion_tokens": 0,
                "cost_usd": 0.0} for i in range(8)]
    threads = [threading.Thread(target=cache.put, args=(key, r)) for r in replies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get(key) in replies


def test_client_reuses_temperature_zero_replies_only(tmp_path):
    """A second client with the same cache sends nothing for a temperature-0 request and
    returns the reply with the usage it was paid at; at temperature > 0 the cache is not used."""
    from elad_core.elad.gsm8k import load_examples
    from elad_core.elad.prompts import cot_messages
    from elad_core.teacher.client import TeacherClient
    from elad_core.elad.oracle_judge import OracleJudge
    from elad_core.teacher.oracle.server import OracleServer

    examples = load_examples("gsm8k", "train")[:2]
    msgs = [cot_messages(e.question) for e in examples]
    with OracleServer(OracleJudge(examples)) as server:
        def client(temperature: float) -> TeacherClient:
            return TeacherClient("openai/oracle", api_base=server.api_base,
                                 temperature=temperature,
                                 reply_cache=ReplyCache(tmp_path / "cache"))

        first = client(0.0)
        paid = [asyncio.run(first.chat(m)) for m in msgs]
        assert first.requests_sent == 2 and first.reused == 0 and paid[0].prompt_tokens > 0
        second = client(0.0)
        again = [asyncio.run(second.chat(m)) for m in msgs]
        assert second.requests_sent == 0 and second.reused == 2
        assert again == paid
        sampled = client(0.7)
        asyncio.run(sampled.chat(msgs[0]))
        assert sampled.requests_sent == 1 and sampled.reused == 0


@pytest.mark.slow
def test_two_runs_with_different_selectors_share_a_reply_cache(prefect_harness, tmp_path):
    """The second run pays only for requests the first never made (the oracle's logs)."""
    from elad_core.elad.config import RunConfig
    from flows.elad.loop import active_distillation

    def run(name: str, selector: str) -> tuple[dict, set[str]]:
        cfg = tiny_config(tmp_path, run_name=name)
        cfg["teacher"]["reply_cache"] = str(tmp_path / "reply_cache")
        cfg["selection"]["selector"] = selector
        summary = active_distillation(RunConfig.model_validate(cfg))
        log = tmp_path / "runs" / name / "oracle_requests.jsonl"
        return summary, {json.loads(x)["messages_sha"] for x in log.read_text().splitlines()}

    first, asked = run("a", "random")
    second, paid = run("b", "egss")
    assert first.invocation.teacher_replies_reused == 0 and first.invocation.teacher_requests_sent > 0
    assert second.invocation.teacher_replies_reused >= 8  # at least the seed round's 8 CoT replies
    assert not paid & asked  # nothing the first run asked was asked again
    assert second.invocation.teacher_requests_sent == len(paid)
