"""The oracle teacher's HTTP server: OpenAI-compatible `/v1/chat/completions` on loopback.

A TEST DOUBLE for a real LLM API (DESIGN.md §2.4), served with FastAPI + uvicorn and reached
through litellm exactly as a real provider is. Usage is counted with litellm's offline
tokenizer; faults (latency, HTTP 500, 429 + `Retry-After`) are injected from a seeded
stream; every request can be appended to a JSONL request log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from elad_core.errors import EladError, PermanentTeacherError
from elad_core.teacher_oracle import TOKENIZER_MODEL, OracleJudge, user_texts

logger = logging.getLogger(__name__)

@dataclass
class FaultConfig:
    """Seeded fault injection. Rates are probabilities per request in [0, 1]; times in seconds.

    error -> HTTP 500; rate limit -> HTTP 429 with a `Retry-After: retry_after_s` header.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    seed: int = 0


class _Faults:
    """Draws each request's fault from one seeded stream (deterministic in request order)."""

    def __init__(self, cfg: FaultConfig):
        self.cfg = cfg
        self._rng = random.Random(cfg.seed)
        self._lock = threading.Lock()

    def draw(self) -> int | None:
        """HTTP status of an injected fault (500 or 429), or None for a normal reply."""
        with self._lock:
            r_error, r_limit = self._rng.random(), self._rng.random()
        if r_error < self.cfg.error_rate:
            return 500
        if r_limit < self.cfg.rate_limit_rate:
            return 429
        return None


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


def create_app(
    judge: OracleJudge, faults: FaultConfig | None = None, request_log: Path | None = None
) -> FastAPI:
    """The oracle's FastAPI app: POST /v1/chat/completions, GET /v1/models, GET /health.

    request_log: JSON-lines file, one line per request written after its outcome is decided
    ({"ts", "question_id", "mode", "turn", "status"}), flushed per line. Counters:
    `app.state.requests` (all chat requests) and `app.state.completions` (HTTP 200 replies).
    """
    faults = faults or FaultConfig()
    injector = _Faults(faults)
    log_lock = threading.Lock()
    app = FastAPI(title="ELAD oracle teacher (test double)", docs_url=None, redoc_url=None)
    app.state.requests = 0
    app.state.completions = 0

    def log(question_id: str | None, mode: str | None, turn: int, status: int) -> None:
        if request_log is None:
            return
        row = {"ts": time.time(), "question_id": question_id, "mode": mode, "turn": turn,
               "status": status}
        with log_lock, open(request_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "questions": len(judge)}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list",
                "data": [{"id": "oracle", "object": "model", "created": 0, "owned_by": "elad"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        app.state.requests += 1
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        try:
            body = await request.json()
            messages = body["messages"]
            valid = isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            log(None, None, 0, 400)
            return _error(400, "oracle teacher: body must be JSON with 'messages'",
                          "invalid_request_error")
        turn = len(user_texts(messages))
        try:
            text, qid, mode = judge.reply(messages)
        except PermanentTeacherError as exc:
            text, qid, mode, problem = "", None, None, str(exc)
        else:
            problem = None
        fault = injector.draw()
        if fault == 500:
            log(qid, mode, turn, 500)
            return _error(500, "oracle teacher: injected server error", "server_error")
        if fault == 429:
            log(qid, mode, turn, 429)
            return _error(429, "oracle teacher: injected rate limit", "rate_limit_error",
                          headers={"Retry-After": f"{faults.retry_after_s:g}"})
        if problem is not None:
            log(qid, mode, turn, 400)
            return _error(400, problem, "invalid_request_error")
        app.state.completions += 1
        body_out = _completion(text, str(body.get("model", "oracle")), messages,
                               app.state.completions)
        log(qid, mode, turn, 200)
        return JSONResponse(body_out)

    return app


class OracleServer:
    """Runs the oracle app with uvicorn in a background daemon thread (a context manager).

    port 0 picks a free loopback port. `.api_base` is "http://HOST:PORT/v1". Raises EladError
    if the server does not answer /health within `startup_timeout_s` seconds.
    """

    def __init__(self, judge: OracleJudge, faults: FaultConfig | None = None,
                 request_log: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 20.0):
        self.app = create_app(judge, faults, request_log)
        self.host, self.port = host, port
        self._startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> OracleServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None,
                                access_log=False, lifespan="off")
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


def serve_forever(judge: OracleJudge, host: str = "127.0.0.1", port: int = 8000,
                  faults: FaultConfig | None = None, request_log: Path | None = None) -> None:
    """Run the oracle in the foreground (CLI command) until interrupted."""
    logger.info("oracle teacher (test double) serving %d questions on http://%s:%d/v1",
                len(judge), host, port)
    uvicorn.run(create_app(judge, faults, request_log), host=host, port=port, log_level="info")
