"""What every teacher layer speaks (docs/design.md §2.3, issue #23): one chat request in, one
`TeacherReply` out.

Layers of elad_core/teacher, each a `Teacher`:
- backends send the request: `litellm_backend.LitellmBackend` (one synchronous request through
  litellm; the offline oracle teacher is reached this way too, on a loopback `api_base`) and
  `batch.BatchBackend` (the provider's batch API, with a synchronous backend for what a batch
  did not answer);
- wrappers add one concern around any Teacher (`wrappers.py`): the reply journal, the reply
  cache shared across runs, client-side rate limits and concurrency;
- the façade `client.TeacherClient` composes them from one `settings.ClientSettings`.
Test fakes of the annotators implement the same `chat` (text + usage + cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class TeacherReply:
    """One teacher reply: its text, token usage as reported by the server, cost in USD."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@runtime_checkable
class Teacher(Protocol):
    """Anything that answers one chat request (a backend, a wrapper, the TeacherClient).

    max_tokens: this request's completion limit; None: the configured `max_tokens`. Raises
    TransientTeacherError / PermanentTeacherError / TeacherAuthError (elad_core.errors).
    """

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        ...
