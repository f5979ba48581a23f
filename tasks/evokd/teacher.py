"""EvoKD's teacher task: one call (analyse / generate / static / label) of a round
(docs/design.md §2.5 steps 2-4), through the session and retry policy of every teacher task
(tasks.teacher). A permanent failure is returned as status "failed" (the flow stops the run
there); a rejected key raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elad_core.errors import PermanentTeacherError, TeacherAuthError
from elad_core.evokd.rounds import chat
from elad_core.files import write_json
from elad_core.teacher.config import TeacherConfig
from tasks.teacher import teacher_session, teacher_task


@teacher_task
def teacher_call(step: str, messages: list[dict], teacher_key: dict[str, Any],
                 teacher_cfg: TeacherConfig, api_base: str | None, out_path: Path,
                 run: str | None = None) -> dict:
    """One teacher call (analyse / generate / static / label) -> {"status" ok|failed, "text",
    "prompt_tokens", "completion_tokens", "teacher_tokens", "cost_usd", "error"}, also
    written to out_path (JSON). teacher_key: the config slice + prompt version that decide
    the reply (the cache key; TeacherConfig.reply_key(PROMPT_VERSION), a plain dict as each
    method picks its fields); teacher_cfg: the whole TeacherConfig (endpoint, timeouts; not in
    the cache key).
    run: the run dir whose RUN_COUNTS entry counts the request (not in the cache key).
    Raises TransientTeacherError (retried by Prefect) and TeacherAuthError."""
    out_path = Path(out_path)
    result = {"step": step, "status": "ok", "text": "", "prompt_tokens": 0,
              "completion_tokens": 0, "cost_usd": 0.0, "error": ""}
    with teacher_session(teacher_cfg, api_base, out_path, run) as client:
        try:
            reply = chat(client, messages)
            result.update(text=reply.text, prompt_tokens=reply.prompt_tokens,
                          completion_tokens=reply.completion_tokens, cost_usd=reply.cost_usd)
        except TeacherAuthError:
            raise
        except PermanentTeacherError as exc:
            result.update(status="failed", error=str(exc))
    result["teacher_tokens"] = result["prompt_tokens"] + result["completion_tokens"]
    write_json(out_path, {**result, "messages": messages})
    return result
