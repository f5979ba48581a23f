"""The oracle teacher's HTTP server: OpenAI-compatible `/v1/chat/completions` (and the batch
API, `/v1/files` + `/v1/batches`: elad_core/teacher/oracle/batches.py) on loopback.

A TEST DOUBLE for a real LLM API (docs/design.md §2.4), served with FastAPI + uvicorn and reached
through litellm exactly as a real provider is. Usage is counted with litellm's offline
tokenizer; faults (latency, 500, 429 + `Retry-After`, timeouts, dropped connections,
malformed bodies, unparsable replies) are injected seeded (`faults.py`); an
optional API key is checked (401 otherwise); every request is appended to a JSONL log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import litellm
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from elad_core.errors import EladError, PermanentTeacherError
from elad_core.files import read_json_lines
from elad_core.teacher.oracle.batches import add_batch_routes
from elad_core.teacher.oracle.faults import (
    UNPARSABLE_TEXT,
    DroppedResponse,
    FaultConfig,
    FaultInjector,
    messages_sha,
    silence_drop_errors,
)
from elad_core.teacher.oracle.judging import TOKENIZER_MODEL, Judge, user_texts

__all__ = ["FaultConfig", "OracleServer", "create_app", "read_request_log", "request_log_stats",
           "serve_forever"]

logger = logging.getLogger(__name__)


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status, headers=headers)


def _completion(text: str, model: str, messages: list[dict], n: int) -> dict[str, Any]:
    """OpenAI chat.completion body with usage counted by litellm's offline tokenizer."""
    prompt_tokens = litellm.token_counter(model=TOKENIZER_MODEL, messages=messages)
    completion_tokens = litellm.token_counter(model=TOKENIZER_MODEL, text=text)
    return {
        "id": f"chatcmpl-oracle-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _RequestLog:
    """Appends one JSON line per request (flushed per line); a no-op without a path."""

    def __init__(self, path: Path | None):
        self.path, self._lock = path, threading.Lock()

    def write(self, **row: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"ts": time.time(), **row}) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


async def _failure(fault: str, faults: FaultConfig, request: Request, log: _RequestLog,
                   row: dict) -> JSONResponse:
    """The response of an injected 500, 429 + Retry-After, or timeout (held `hang_s`, or until
    the client hangs up, then 504), logged."""
    if fault == "error":
        log.write(**row, status=500)
        return _error(500, "oracle teacher: injected server error", "server_error")
    if fault == "rate_limit":
        log.write(**row, status=429)
        return _error(429, "oracle teacher: injected rate limit", "rate_limit_error",
                      headers={"Retry-After": f"{faults.retry_after_s:g}"})
    log.write(**row, status=504)
    deadline = time.monotonic() + faults.hang_s
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)
    return _error(504, "oracle teacher: injected timeout", "timeout")


def create_app(judge: Judge, faults: FaultConfig | None = None,
               request_log: Path | None = None, api_key: str | None = None) -> FastAPI:
    """The oracle's FastAPI app: POST /v1/chat/completions, GET /v1/models, GET /health, and
    the batch API (oracle/batches.py: each line answered as the chat endpoint would; its
    request-log rows carry a "kind").

    request_log: JSON-lines file, one line per chat request, written once its outcome is
    decided: {"ts", "question_id", "mode", "turn", "status", "fault", "completion",
    "messages_sha", "prompt_tokens", "completion_tokens"}; `completion` is true exactly when
    a readable completion was delivered (what a provider bills; a client that hung up before
    the reply was ready gets none: status 499). api_key: when set, requests
    without `Authorization: Bearer <api_key>` get HTTP 401 (the key is never logged).
    Counters: `app.state.requests` (all chat requests), `app.state.completions` (delivered).
    """
    faults = faults or FaultConfig()
    injector = FaultInjector(faults)
    log = _RequestLog(request_log)
    silence_drop_errors()
    app = FastAPI(title="ELAD oracle teacher (test double)", docs_url=None, redoc_url=None)
    app.state.requests = 0
    app.state.completions = 0

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "questions": len(judge)}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list",
                "data": [{"id": "oracle", "object": "model", "created": 0, "owned_by": "elad"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        app.state.requests += 1
        row: dict[str, Any] = {"question_id": None, "mode": None, "turn": 0, "fault": None,
                               "completion": False, "messages_sha": None,
                               "prompt_tokens": 0, "completion_tokens": 0}
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            log.write(**row, status=401)
            return _error(401, "oracle teacher: missing or wrong API key", "authentication_error")
        try:
            body = await request.json()
            messages = body["messages"]
            valid = isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
        except (ValueError, KeyError, TypeError):
            valid = False
        except ClientDisconnect:
            log.write(**row, status=499)
            return _error(499, "oracle teacher: client closed the request", "client_closed")
        if faults.latency_s > 0:  # "generating": the request has been read
            await asyncio.sleep(faults.latency_s)
        if not valid:
            log.write(**row, status=400)
            return _error(400, "oracle teacher: body must be JSON with 'messages'",
                          "invalid_request_error")
        row.update(turn=len(user_texts(messages)), messages_sha=messages_sha(messages))
        try:
            text, qid, mode = judge.reply(messages)
            row.update(question_id=qid, mode=mode)
            problem = None
        except PermanentTeacherError as exc:
            text, problem = "", str(exc)
        row["fault"] = fault = injector.draw(row["messages_sha"])
        if fault in ("error", "rate_limit", "timeout"):
            return await _failure(fault, faults, request, log, row)
        if fault == "bad_request":
            problem = "oracle teacher: injected bad request"
        if problem is not None:
            log.write(**row, status=400)
            return _error(400, problem, "invalid_request_error")
        if fault == "unparsable":
            text = UNPARSABLE_TEXT
        out = _completion(text, str(body.get("model", "oracle")), messages, app.state.requests)
        encoded = json.dumps(out).encode("utf-8")
        if fault in ("drop", "malformed"):
            log.write(**row, status=200)
            if fault == "drop":
                return DroppedResponse(encoded)
            return Response(encoded[: len(encoded) // 2], 200, media_type="application/json")
        if await request.is_disconnected():  # the client hung up (was killed): like vLLM,
            log.write(**row, status=499)  # the oracle drops the work and delivers nothing
            return _error(499, "oracle teacher: client closed the request", "client_closed")
        app.state.completions += 1
        usage = out["usage"]
        row.update(completion=True, prompt_tokens=usage["prompt_tokens"],
                   completion_tokens=usage["completion_tokens"])
        log.write(**row, status=200)
        return JSONResponse(out)

    add_batch_routes(app, judge, faults, log.write, _completion, api_key)
    return app


def read_request_log(path: Path) -> list[dict]:
    """The rows of a request log ([] if the file does not exist); a torn last line is skipped."""
    return read_json_lines(path)


def request_log_stats(rows: list[dict]) -> dict[str, Any]:
    """Counts over request-log rows: requests, completions (delivered, billed), completions
    paid twice (the same messages completed more than once), requests per fault kind, and
    the tokens of the delivered completions."""
    delivered = Counter(r["messages_sha"] for r in rows if r.get("completion"))
    return {
        "requests": len(rows),
        "completions": sum(delivered.values()),
        "paid_twice": sum(n - 1 for n in delivered.values()),
        "faults": dict(Counter(r["fault"] for r in rows if r.get("fault"))),
        "statuses": dict(Counter(str(r["status"]) for r in rows)),
        "teacher_tokens": sum(r.get("prompt_tokens", 0) + r.get("completion_tokens", 0)
                              for r in rows if r.get("completion")),
    }


class OracleServer:
    """Runs the oracle app with uvicorn in a background daemon thread (a context manager).

    port 0 picks a free loopback port. `.api_base` is "http://HOST:PORT/v1". Raises EladError
    if the server does not answer /health within `startup_timeout_s` seconds.
    """

    def __init__(self, judge: Judge, faults: FaultConfig | None = None,
                 request_log: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 20.0, api_key: str | None = None):
        self.app = create_app(judge, faults, request_log, api_key)
        self.host, self.port = host, port
        self._startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> OracleServer:
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
        # when the socket says it is TCP; without it Nagle + the client's delayed ACK add
        # ~40 ms to every request after the first on a kept-alive connection
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"oracle-teacher-{self.port}", daemon=True)
        self._thread.start()
        self._wait_healthy()
        logger.info("oracle teacher listening on %s", self.api_base)
        return self

    def _wait_healthy(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                break
            try:
                with opener.open(self.api_base.removesuffix("/v1") + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EladError(f"oracle teacher did not start on {self.api_base} within "
                        f"{self._startup_timeout_s:g} s; is the port free?")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def __enter__(self) -> OracleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(judge: Judge, host: str = "127.0.0.1", port: int = 8000,
                  faults: FaultConfig | None = None, request_log: Path | None = None,
                  api_key: str | None = None) -> None:
    """Run the oracle in the foreground (CLI command) until interrupted."""
    logger.info("oracle teacher (test double) serving %d questions on http://%s:%d/v1",
                len(judge), host, port)
    uvicorn.run(create_app(judge, faults, request_log, api_key), host=host, port=port,
                log_level="info")
