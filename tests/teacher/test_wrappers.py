"""The teacher layers (issue #23): wrappers compose around any `Teacher` backend, settings are
declared once. No server: a fake backend stands in for litellm."""

from __future__ import annotations

import asyncio
import json

from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.journal import ReplyJournal, request_key
from elad_core.teacher.protocol import Teacher, TeacherReply
from elad_core.teacher.reply_cache import ReplyCache
from elad_core.teacher.settings import ClientSettings
from elad_core.teacher.wrappers import Cached, Journaled, Limited

MSG = [{"role": "user", "content": "What is 2 + 2?"}]


class FakeBackend:
    def __init__(self):
        self.calls: list[int | None] = []

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        self.calls.append(max_tokens)
        return TeacherReply("4", 9, 1, 1e-5)


def test_wrappers_compose_around_any_backend(tmp_path):
    settings = ClientSettings(model="openai/m", api_base="http://127.0.0.1:1/v1")
    fake, journal = FakeBackend(), ReplyJournal(tmp_path / "j.jsonl")
    cached = Cached(fake, ReplyCache(tmp_path / "cache"), settings)
    teacher = Journaled(cached, journal, settings)
    assert isinstance(fake, Teacher) and isinstance(teacher, Teacher)
    first = asyncio.run(teacher.chat(MSG))
    assert asyncio.run(teacher.chat(MSG)) == first and fake.calls == [None]  # journal replay
    assert journal.hits == 1 and cached.reused == 0
    (line,) = (tmp_path / "j.jsonl").read_text().splitlines()
    assert json.loads(line) == {"key": request_key("openai/m", MSG, 0.0, 512), "text": "4",
                                "prompt_tokens": 9, "completion_tokens": 1, "cost_usd": 1e-5}
    # another run with a fresh journal: served by the reply cache, journaled again
    again = Journaled(Cached(fake, ReplyCache(tmp_path / "cache"), settings),
                      ReplyJournal(tmp_path / "k.jsonl"), settings)
    assert asyncio.run(again.chat(MSG)) == first and fake.calls == [None]
    # a request with its own limit has its own keys
    asyncio.run(teacher.chat(MSG, max_tokens=16))
    assert fake.calls == [None, 16]


def test_limited_throttles_with_the_request_tokens():
    settings = ClientSettings(model="openai/gpt-4o-mini", max_tokens=100, max_concurrency=1)
    seen: list[int] = []

    async def throttle(tokens: int) -> None:
        seen.append(tokens)

    teacher = Limited(FakeBackend(), settings, throttle, lambda messages: 7)
    asyncio.run(teacher.chat(MSG))
    asyncio.run(teacher.chat(MSG, max_tokens=10))  # a new event loop: a new semaphore
    assert seen == [107, 17]


def test_settings_are_declared_once_and_read_from_the_config():
    cfg = TeacherConfig(model="openai/gpt-4o-mini", max_concurrency=3, mode="batch",
                        batch_price_ratio=0.4, reply_cache="/tmp/cache")
    settings = ClientSettings.from_config(cfg, None, api_key="sk-secret-0123456789")
    assert (settings.max_concurrency, settings.mode, settings.batch_price_ratio,
            settings.reply_cache, settings.timeout_concurrency) == (3, "batch", 0.4,
                                                                    "/tmp/cache", 3)
    client = TeacherClient(settings=settings)
    assert client.settings is settings and client.max_concurrency == 3
    assert "sk-secret" not in repr(settings)
    oracle = ClientSettings.from_config(TeacherConfig(), "http://127.0.0.1:9/v1")
    assert (oracle.model, oracle.api_base) == ("openai/oracle", "http://127.0.0.1:9/v1")
