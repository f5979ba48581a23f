"""The oracle teacher's batch API: OpenAI's Files + Batch endpoints, as a TEST DOUBLE
(docs/design.md §2.4, §3.3; what `teacher.mode: batch` talks to).

`POST /v1/files` (multipart, purpose=batch) stores a JSONL file of chat requests;
`POST /v1/batches` starts a batch over it; `GET /v1/batches/{id}` reports it in progress
until `batch_delay_s` has passed since its creation (read at each poll from
`app.state.batch_delay_s`, so a test may lower it on a running server), then done;
`GET /v1/files/{id}/content` serves its output and error files; `POST
/v1/batches/{id}/cancel` cancels one not yet done. Each line is answered with exactly the
completion `/v1/chat/completions` would give for its messages (same judge, same token
counts). Faults: `batch_row_fail_rate` of the rows (seeded by their messages) go to the error
file (HTTP 500 rows, or `batch_expired` when `batch_end` is "expired"); `batch_end` "failed"
fails the whole batch (no output). The sync faults never touch batch rows.

Request log rows (beside the chat rows): {"kind": "batch", "batch_id", "input_file_id",
"rows", "status"} per batch created (count them to count submissions); {"kind":
"batch_cancel", "batch_id", "status"}; and one {"kind": "batch_row", "batch_id", ...the chat
row fields} per row once the batch is done, `completion` true for the rows answered (billed).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from elad_core.errors import PermanentTeacherError
from elad_core.teacher.oracle.faults import FaultConfig, messages_sha
from elad_core.teacher.oracle.judging import user_texts

CHAT_ENDPOINT = "/v1/chat/completions"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status)


def _form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data body -> {field name: (filename or None, bytes)}."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        return {}
    return {part.get_param("name", header="content-disposition"):
            (part.get_filename(), part.get_payload(decode=True) or b"")
            for part in msg.iter_parts()}


def _fails(seed: int, sha: str, rate: float) -> bool:
    """Seeded draw: does the row with messages `sha` land in the error file?"""
    digest = hashlib.sha256(f"{seed}:batch:{sha}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def add_batch_routes(app: FastAPI, judge: Any, faults: FaultConfig,
                     log: Callable[..., None],
                     completion: Callable[[str, str, list[dict], int], dict],
                     api_key: str | None = None) -> None:
    """Add the Files + Batch endpoints to the oracle's `app`.

    judge: its `.reply(messages)` -> (text, question_id, mode), or PermanentTeacherError.
    log: writes one request-log row (keyword fields). completion: (text, model, messages, n)
    -> the chat.completion body the chat endpoint sends. api_key: as for chat requests,
    a request without `Authorization: Bearer <api_key>` gets HTTP 401.
    """
    files: dict[str, dict[str, Any]] = {}
    batches: dict[str, dict[str, Any]] = {}
    ids = itertools.count(1)
    app.state.batch_delay_s = faults.batch_delay_s
    app.state.batches = batches

    def denied(request: Request) -> JSONResponse | None:
        if api_key is None or request.headers.get("authorization") == f"Bearer {api_key}":
            return None
        log(kind="batch_api", path=request.url.path, status=401)
        return _error(401, "oracle teacher: missing or wrong API key", "authentication_error")

    def new_file(data: bytes, filename: str, purpose: str) -> dict:
        meta = {"id": f"file-oracle-{next(ids)}", "object": "file", "bytes": len(data),
                "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                "status": "processed"}
        files[meta["id"]] = {"meta": meta, "data": data}
        return meta

    def answer(batch_id: str, index: int, line: dict) -> tuple[dict | None, dict | None]:
        """One input line -> (output line, None) or (None, error line); logged."""
        body, custom_id = line["body"], line["custom_id"]
        messages = body["messages"]
        sha = messages_sha(messages)
        row = {"kind": "batch_row", "batch_id": batch_id, "question_id": None, "mode": None,
               "turn": len(user_texts(messages)), "fault": None, "completion": False,
               "messages_sha": sha, "prompt_tokens": 0, "completion_tokens": 0}
        base = {"id": f"batch_req_{batch_id}_{index}", "custom_id": custom_id}
        if _fails(faults.seed, sha, faults.batch_row_fail_rate):
            if faults.batch_end == "expired":
                log(**row, status="expired")
                return None, {**base, "response": None, "error": {
                    "code": "batch_expired", "message": "This request could not be executed "
                    "before the completion window expired."}}
            log(**row, status=500)
            return None, {**base, "error": None, "response": {
                "status_code": 500, "request_id": base["id"],
                "body": {"error": {"message": "oracle teacher: injected batch row error",
                                   "type": "server_error"}}}}
        try:
            text, qid, mode = judge.reply(messages)
        except PermanentTeacherError as exc:
            log(**row, status=400)
            return None, {**base, "error": None, "response": {
                "status_code": 400, "request_id": base["id"],
                "body": {"error": {"message": str(exc), "type": "invalid_request_error"}}}}
        out = completion(text, str(body.get("model", "oracle")), messages, index)
        usage = out["usage"]
        row.update(question_id=qid, mode=mode, completion=True,
                   prompt_tokens=usage["prompt_tokens"],
                   completion_tokens=usage["completion_tokens"])
        app.state.completions += 1
        log(**row, status=200)
        return {**base, "error": None, "response": {
            "status_code": 200, "request_id": base["id"], "body": out}}, None

    def finish(batch: dict) -> None:
        """Answer every line of a batch whose delay has passed (once) and close it."""
        meta, now = batch["meta"], int(time.time())
        if faults.batch_end == "failed":
            meta.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "oracle_failed", "message": "oracle teacher: injected batch failure"}]})
            return
        outputs, errors = [], []
        for index, line in enumerate(batch["lines"]):
            ok, bad = answer(meta["id"], index, line)
            (outputs if ok else errors).append(ok or bad)
        for name, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
                meta[name] = new_file(data, f"{meta['id']}_{name}.jsonl", "batch_output")["id"]
        expired = faults.batch_end == "expired"
        meta.update(status="expired" if expired else "completed",
                    **{"expired_at" if expired else "completed_at": now},
                    request_counts={"total": len(batch["lines"]), "completed": len(outputs),
                                    "failed": len(errors)})

    def current(batch: dict) -> dict:
        meta = batch["meta"]
        if meta["status"] == "in_progress":
            elapsed = time.time() - batch["t0"]
            delay = float(app.state.batch_delay_s)
            if elapsed >= delay:
                finish(batch)
            else:  # simulated progress, for the client's progress lines
                meta["request_counts"]["completed"] = int(len(batch["lines"]) * elapsed / delay)
        return meta

    @app.post("/v1/files")
    async def upload(request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        form = _form(request.headers.get("content-type", ""), await request.body())
        purpose, (filename, data) = form.get("purpose", (None, b""))[1], form.get("file",
                                                                                  (None, None))
        if data is None or purpose != b"batch":
            return _error(400, "oracle teacher: multipart upload with 'file' and purpose=batch")
        return new_file(data, filename or "upload.jsonl", "batch")

    @app.get("/v1/files/{file_id}")
    async def file_meta(file_id: str, request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        found = files.get(file_id)
        return found["meta"] if found else _error(404, f"no file {file_id}")

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str, request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        found = files.get(file_id)
        if found is None:
            return _error(404, f"no file {file_id}")
        return Response(found["data"], 200, media_type="application/jsonl")

    @app.post("/v1/batches")
    async def create(request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        body = await request.json()
        found = files.get(body.get("input_file_id", ""))
        if found is None:
            return _error(404, f"no file {body.get('input_file_id')}")
        if body.get("endpoint") != CHAT_ENDPOINT:
            return _error(400, f"oracle teacher: only {CHAT_ENDPOINT} batches")
        batch_id, now = f"batch_oracle_{next(ids)}", int(time.time())
        meta = {"id": batch_id, "object": "batch", "endpoint": CHAT_ENDPOINT,
                "input_file_id": body["input_file_id"], "completion_window": "24h",
                "created_at": now, "in_progress_at": now, "expires_at": now + 86400,
                "status": "in_progress", "metadata": body.get("metadata"),
                "request_counts": {"total": 0, "completed": 0, "failed": 0}}
        try:
            lines = [json.loads(x) for x in found["data"].decode("utf-8").splitlines() if x]
            assert all(isinstance(x["body"]["messages"], list) and x["custom_id"] for x in lines)
        except (ValueError, KeyError, TypeError, AssertionError):
            lines = []
            meta.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_file", "message": "oracle teacher: unreadable input line"}]})
        meta["request_counts"]["total"] = len(lines)
        batches[batch_id] = {"meta": meta, "lines": lines, "t0": time.time()}
        log(kind="batch", batch_id=batch_id, input_file_id=body["input_file_id"],
            rows=len(lines), status=200)
        return meta

    @app.get("/v1/batches/{batch_id}")
    async def retrieve(batch_id: str, request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        found = batches.get(batch_id)
        return current(found) if found else _error(404, f"no batch {batch_id}")

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel(batch_id: str, request: Request) -> Any:
        if (refused := denied(request)) is not None:
            return refused
        found = batches.get(batch_id)
        if found is None:
            return _error(404, f"no batch {batch_id}")
        meta = current(found)
        if meta["status"] == "in_progress":
            meta.update(status="cancelled", cancelled_at=int(time.time()))
        log(kind="batch_cancel", batch_id=batch_id, status=200)
        return meta
