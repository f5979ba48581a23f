"""Teacher timeouts and endpoint failures (issue #22): the per-request timeout scales with the
request's max_tokens, so a slow server is waited for without a hand-set number; a dead endpoint,
a timeout or a refused connection is one line naming the endpoint, the cause and the setting.

Real HTTP throughout: TeacherClient -> litellm -> the oracle server (latency injected), or a
closed loopback port.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from elad_core.elad import prompts
from elad_core.elad.gsm8k import load_examples
from elad_core.errors import TeacherAuthError, TransientTeacherError
from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import TeacherConfig
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import FaultConfig, OracleServer, read_request_log


@pytest.fixture(scope="module")
def examples():
    return load_examples("gsm8k", "train")[:2]


@pytest.fixture(scope="module")
def slow_oracle(examples):
    """An oracle that takes 1.2 s per request (a slow server), on a free loopback port."""
    with OracleServer(OracleJudge(examples), FaultConfig(latency_s=1.2)) as server:
        yield server


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_default_timeout_scales_with_max_tokens_and_concurrency():
    cfg = TeacherConfig(model="openai/m", api_base="http://127.0.0.1:1/v1")
    assert cfg.timeout_s is None  # no fixed number by default
    client = TeacherClient.from_config(cfg, None)
    # 60 s + 512 tokens × 8 requests in flight / 4 tokens/s
    assert client.request_timeout_s() == pytest.approx(60 + 512 * 8 / 4)
    assert client.request_timeout_s(24) == pytest.approx(60 + 24 * 8 / 4)  # a short turn
    fixed = TeacherClient.from_config(cfg.model_copy(update={"timeout_s": 900.0}), None)
    assert fixed.request_timeout_s() == fixed.request_timeout_s(24) == 900.0
    # a worker process's client has a share of the concurrency, but all of them share the server
    twin = TeacherClient(settings=client.worker_settings(max_concurrency=3))
    assert twin.request_timeout_s() == client.request_timeout_s()


def test_a_local_openai_style_server_needs_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local = TeacherClient("openai/smollm2", api_base="http://127.0.0.1:8000/v1")
    assert local.settings.request_api_key() == "no-key"  # litellm refuses to send no key
    # litellm's own lookup
    assert TeacherClient("openai/gpt-4o-mini").settings.request_api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0123456789")
    assert local.settings.request_api_key() is None  # the user's variable, read by litellm


def test_a_fixed_timeout_cuts_a_slow_server_off_with_a_line_naming_the_setting(
        slow_oracle, examples):
    client = TeacherClient("openai/oracle", api_base=slow_oracle.api_base, timeout_s=0.5)
    # the first call of a process pays litellm's lazy imports: not part of the timeout
    with pytest.raises(TransientTeacherError):
        warm = TeacherClient("openai/oracle", api_base=f"http://127.0.0.1:{closed_port()}/v1")
        asyncio.run(warm.chat([{"role": "user", "content": "hi"}]))
    t0 = time.monotonic()
    with pytest.raises(TransientTeacherError) as caught:
        asyncio.run(client.chat(prompts.cot_messages(examples[0].question)))
    assert time.monotonic() - t0 < 1.1
    msg = str(caught.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert slow_oracle.api_base in msg and "no reply within 0.5 s" in msg
    assert "teacher.timeout_s" in msg


def test_the_scaled_timeout_waits_for_a_slow_server(slow_oracle, examples):
    # a base (0.5 s) the server's 1.2 s cross, plus 64 tokens × 2 in flight / 128 tokens/s = 1 s
    client = TeacherClient("openai/oracle", api_base=slow_oracle.api_base, timeout_base_s=0.5,
                           min_tokens_per_s=128, max_tokens=64, max_concurrency=2)
    assert client.request_timeout_s() == pytest.approx(1.5)
    reply = asyncio.run(client.chat(prompts.cot_messages(examples[0].question)))
    assert reply.completion_tokens > 0 and "####" in reply.text
    # a call asking for fewer tokens gets a shorter timeout: 0.5 + 8 × 2 / 128 s < 1.2 s
    with pytest.raises(TransientTeacherError, match=r"no reply within 0\.625 s"):
        asyncio.run(client.chat(prompts.cot_messages(examples[1].question), max_tokens=8))


def test_a_dead_endpoint_is_one_line_naming_it_and_the_setting():
    base = f"http://127.0.0.1:{closed_port()}/v1"
    client = TeacherClient("openai/local-model", api_base=base)
    with pytest.raises(TransientTeacherError) as caught:
        asyncio.run(client.chat([{"role": "user", "content": "hi"}]))
    msg = str(caught.value)
    assert "\n" not in msg and msg.startswith(f"teacher openai/local-model at {base}: ")
    assert "connection refused" in msg and "teacher.api_base" in msg


def test_an_unknown_host_names_the_setting():
    client = TeacherClient("openai/m", api_base="http://no-such-host.invalid/v1")
    with pytest.raises(TransientTeacherError, match="unknown host name; check teacher.api_base"):
        asyncio.run(client.chat([{"role": "user", "content": "hi"}]))


def test_no_key_for_a_provider_is_an_auth_error_not_a_retry(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = TeacherClient("openai/gpt-4o-mini")  # OpenAI itself: litellm needs a key
    with pytest.raises(TeacherAuthError, match="no API key; set teacher.api_key_env"):
        asyncio.run(client.chat([{"role": "user", "content": "hi"}]))


def test_a_timed_out_request_is_not_delivered(examples, tmp_path):
    """The slow server finds the client gone and delivers (bills) nothing: the retry is the
    only completion paid for."""
    log = tmp_path / "log.jsonl"
    with OracleServer(OracleJudge(examples), FaultConfig(latency_s=0.6), log) as srv:
        messages = prompts.cot_messages(examples[0].question)
        with pytest.raises(TransientTeacherError):
            asyncio.run(TeacherClient("openai/oracle", api_base=srv.api_base,
                                      timeout_s=0.2).chat(messages))
        time.sleep(0.8)
        asyncio.run(TeacherClient("openai/oracle", api_base=srv.api_base).chat(messages))
    rows = read_request_log(log)
    assert [(r["status"], r["completion"]) for r in rows] == [(499, False), (200, True)]


def test_the_cli_line_of_a_batch_whose_retries_are_spent():
    from flows.cli_errors import one_line_error

    first = ("teacher openai/m at http://127.0.0.1:9/v1: connection refused: no server listens "
             "there; start it, or check teacher.api_base (--teacher-api-base)")
    exc = TransientTeacherError(f"4 of 4 teacher requests failed transiently (first: {first}); "
                                "retry the batch")
    line = one_line_error(exc, TeacherConfig(retries=2))
    assert line == (f"{first} (4 of 4 requests of a teacher batch still failing after 3 "
                    "attempt(s), teacher.retries 2); the same command resumes the run, paying "
                    "nothing already received")
    assert one_line_error(ValueError("a\n  b")) == "a b"  # any other error: its message, one line
