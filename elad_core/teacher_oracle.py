"""The offline oracle teacher (DESIGN.md §2.4): a TEST DOUBLE for a real LLM teacher.

It answers from a dataset's gold rationales, over an OpenAI-compatible HTTP API on loopback
(FastAPI + uvicorn), so the pipeline reaches it through litellm exactly as it reaches a real
provider (`model="openai/oracle"`, `api_base="http://127.0.0.1:PORT/v1"`). It never makes up an
answer: an unknown question is an HTTP 400. Usage is counted with litellm's offline tokenizer, so
budgets are in realistic tokens. Faults (latency, 500s, 429s with `Retry-After`) are seeded.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import operator
import random
import re
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

from elad_core import prompts
from elad_core.errors import EladError, PermanentTeacherError
from elad_core.parsing import gsm8k_calculations, numbers_in, split_steps
from elad_core.records import Example

logger = logging.getLogger(__name__)

TOKENIZER_MODEL = "gpt-3.5-turbo"  # litellm counts its tokens offline (bundled tiktoken files)


class UnknownQuestion(PermanentTeacherError):
    """The oracle has no gold solution for the question it was asked (HTTP 400)."""


def question_key(text: str) -> str:
    """Index key of a question: lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- arithmetic (GSM8K family)
_NUM = r"-?(?:\d+(?:\.\d+)?|\.\d+)"
_OP = r"(?:[-+*/×÷–−]|(?<=\s)x(?=\s))"  # a plain-text "x" counts only between spaces
_UNIT = r"(?:\s+(?!x\b)[A-Za-z’']+)*"  # words after a number: "3 green hats + 16 pink hats"
_SIDE = rf"\(*\s*{_NUM}{_UNIT}(?:\s*\)*\s*{_OP}\s*\(*\s*{_NUM}{_UNIT})*\s*\)*"
_PLAIN_CALC_RE = re.compile(rf"{_SIDE}(?:\s*=\s*{_SIDE})+")
_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
_AST_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
            ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "–": "-", "−": "-", ",": "", "$": "", "€": "",
                          "£": ""})
TOLERANCE = 1e-6  # relative (absolute below 1)


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(b))


def _evaluate(expr: str) -> float | None:
    """Value of an arithmetic expression (+ - * / // x × ÷, parentheses, unit words ignored).

    None when it is not plain arithmetic (never evaluates anything else: parsed with `ast`).
    """
    expr = re.sub(r"(?<=\s)x(?=\s)", "*", expr.translate(_SYMBOLS))
    expr = re.sub(r"[A-Za-z’']+", " ", expr)  # unit words ("3 hats + 16 hats")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
            return _AST_OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("not arithmetic")

    for candidate in (expr, expr.replace("(", "").replace(")", "")):
        try:
            return ev(ast.parse(candidate.strip(), mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
            continue
    return None


def _has_op(side: str) -> bool:
    return re.search(_OP, side[1:]) is not None  # [1:]: a leading "-" is a sign


def _check_step(step: str) -> tuple[int, bool, float | None]:
    """(number of calculations, all arithmetically true, result of the last one).

    Calculations: GSM8K `<<expr=value>>` annotations and plain `a op b = c` text (annotations
    removed first). The result is the last annotation's value, else the last plain one's.
    """
    checks, annotated, plain_results = [], [], []
    for expr, value in gsm8k_calculations(step):
        got, shown = _evaluate(expr), _to_float(value)
        checks.append(got is not None and shown is not None and _close(got, shown))
        annotated.append(shown)
    plain = re.sub(r"[$€£]|(?<=\d),(?=\d{3})", "", _ANNOTATION_RE.sub("", step))
    for m in _PLAIN_CALC_RE.finditer(plain):
        if m.group(0).rstrip()[-1].isdigit() and re.match(r"\s*\d", plain[m.end():]):
            continue  # result side cut short ("= 1 1/2"): not checkable
        sides = [s.strip() for s in m.group(0).split("=")]
        cut = re.search(r"(?:[-+*/×÷–−(.\d]|\sx)$", plain[: m.start()].rstrip())
        if cut or not _has_op(sides[0]):
            sides = sides[1:]  # "40 marbles - 3 - 5 = 32", "Week 4 = 48 + 48 = 96"
        if len(sides) < 2 or not any(_has_op(s) for s in sides):
            continue  # "48 = 48": no operation, not a calculation
        vals = [_evaluate(s) for s in sides]
        checks.append(None not in vals and all(_close(v, vals[-1]) for v in vals[:-1]))
        plain_results.append(vals[-1])
    results = annotated or plain_results
    return len(checks), all(checks), results[-1] if results else None



def _user_texts(messages: list[dict]) -> list[str]:
    """Text of every user message, in order (list-of-parts contents are joined)."""
    out = []
    for m in messages:
        if m.get("role") != "user":
            continue
        content = m.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(str(content))
    return out


class OracleJudge:
    """Answers CoT and CLEAR turns from gold solutions (DESIGN §2.3, §2.4).

    examples: Example records with gold `rationale` (steps, no `####` line) and normalised
    `answer`; those without an answer are not indexed. Judging is per answer family; only the
    arithmetic ("number", GSM8K) family is implemented (`_judge_number`); label families get
    their own method later.
    """

    def __init__(self, examples: list[Example]):
        self._by_key = {question_key(e.question): e for e in examples if e.answer is not None}

    def __len__(self) -> int:
        return len(self._by_key)

    def reply(self, messages: list[dict]) -> tuple[str, str, str]:
        """Chat messages -> (reply_text, question_id, mode), mode "cot" | "clear".

        Raises UnknownQuestion when the first user message holds no question the oracle knows.
        """
        users = _user_texts(messages)
        question = prompts.question_of(users[0]) if users else None
        example = self._by_key.get(question_key(question)) if question else None
        if example is None:
            shown = (question or (users[0] if users else ""))[:80]
            raise UnknownQuestion(f"oracle teacher: unknown question '{shown}'")
        gold = split_steps(example.rationale)
        proposed = [prompts.proposed_step(u) for u in users]
        accepted = [p for p in proposed[:-1] if p is not None]
        if proposed[-1] is not None:
            claimed = self._replay(example, gold, accepted)
            correct, line = self._judge(example, gold, proposed[-1], claimed)
            if correct:
                own = gold[line] if line is not None else proposed[-1]
                return f"Yes.\n{own}", example.id, "clear"
            rest = self._remaining(gold, claimed)
            return "No.\n" + prompts.student_target(rest, example.answer), example.id, "clear"
        if users[-1].strip() == prompts.CLEAR_FINAL.strip():
            claimed = self._replay(example, gold, accepted)
            rest = self._remaining(gold, claimed)
            return prompts.student_target(rest, example.answer), example.id, "clear"
        return prompts.student_target(example.rationale, example.answer), example.id, "cot"

    # ------------------------------------------------------------ judging
    def _judge(
        self, example: Example, gold: list[str], step: str, claimed: set[int]
    ) -> tuple[bool, int | None]:
        """(correct, index of the gold line the step reproduces or None); per answer family."""
        if example.family == "number":
            return self._judge_number(example, gold, step, claimed)
        raise PermanentTeacherError(
            f"oracle teacher: CLEAR judging for answer family '{example.family}' is not "
            "implemented yet; use the cot annotator"
        )

    def _judge_number(
        self, example: Example, gold: list[str], step: str, claimed: set[int]
    ) -> tuple[bool, int | None]:
        """GSM8K arithmetic rule (DESIGN §2.4).

        A step equal to an unclaimed gold line is correct. Otherwise every calculation in it must
        be true and its result (last calculation) must be a gold intermediate result or a number
        of the question; a step without calculation is correct only if it has no '='.
        """
        norm = " ".join(step.split())
        for i, line in enumerate(gold):
            if i not in claimed and " ".join(line.split()) == norm:
                return True, i
        n_calcs, all_true, result = _check_step(step)
        if n_calcs == 0:
            return "=" not in step, None
        if not all_true or result is None:
            return False, None
        values = [self._line_values(line) for line in gold]
        for i, vals in enumerate(values):
            if i not in claimed and any(_close(result, v) for v in vals):
                return True, i
        known = [v for vals in values for v in vals]
        known += [float(n) for n in numbers_in(example.question)]
        return any(_close(result, v) for v in known), None

    @staticmethod
    def _line_values(line: str) -> list[float]:
        """Values of a gold line's `<<expr=value>>` annotations (unreadable ones skipped)."""
        out = []
        for _, value in gsm8k_calculations(line):
            number = _to_float(value)
            if number is not None:
                out.append(number)
        return out

    def _replay(self, example: Example, gold: list[str], accepted: list[str]) -> set[int]:
        """Gold lines claimed by the already-accepted steps (the dialogue stops at the first No)."""
        claimed: set[int] = set()
        for step in accepted:
            _, line = self._judge(example, gold, step, claimed)
            if line is not None:
                claimed.add(line)
        return claimed

    def _remaining(self, gold: list[str], claimed: set[int]) -> str:
        """Unclaimed gold lines in order, newline-joined. A line without calculation that comes
        before the last claimed line counts as covered (it only restates the question)."""
        last = max(claimed, default=-1)
        keep = [
            line
            for i, line in enumerate(gold)
            if i not in claimed and not (i < last and not gsm8k_calculations(line))
        ]
        return "\n".join(keep)


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
        turn = len(_user_texts(messages))
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
