"""Backend: one synchronous chat request through litellm (docs/design.md §2.3, §3), and the
mapping of litellm / transport errors to the project's teacher errors.

Any provider litellm speaks to works (OpenAI, Anthropic, vLLM, Ollama, ...); the offline oracle
teacher is reached the same way (`openai/oracle` on a loopback `api_base`): it is this
backend's test double, not a backend of its own. litellm's own retries are OFF (retries live
in the Prefect task layer); errors are mapped to TransientTeacherError (retry) or
PermanentTeacherError / TeacherAuthError (record and move on). The API key is read at call
time (ClientSettings.request_api_key), never logged or stored, and redacted from error
messages. Concurrency and rate limits are a wrapper around this backend
(elad_core/teacher/wrappers.py), not part of it.

Timeouts (issue #22): each request may take `ClientSettings.request_timeout_s(max_tokens)`
seconds, so a call asking for fewer tokens (a short answer turn) gets a shorter timeout.
Transient failures name the endpoint, the cause and the setting to change (connection
refused -> teacher.api_base, a timeout -> teacher.timeout_s, ...), on one line.
"""

from __future__ import annotations

import email.utils
import logging
import re
import socket
import time

import litellm

from elad_core.errors import (
    PermanentTeacherError,
    TeacherAuthError,
    TeacherError,
    TransientTeacherError,
)
from elad_core.teacher.pricing import TeacherPrices
from elad_core.teacher.protocol import TeacherReply
from elad_core.teacher.settings import ClientSettings

logger = logging.getLogger(__name__)
litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" prints on every error

_TRANSIENT = (
    litellm.RateLimitError,
    litellm.ServiceUnavailableError,
    litellm.InternalServerError,
    litellm.BadGatewayError,
    litellm.APIConnectionError,
    litellm.Timeout,
    TimeoutError,
)
_AUTH = (litellm.AuthenticationError, litellm.PermissionDeniedError)
_PERMANENT = (
    litellm.BadRequestError,
    litellm.NotFoundError,
    litellm.UnprocessableEntityError,
)


class LitellmBackend:
    """A `Teacher` sending each request at once through `litellm.acompletion`.

    `requests_sent` counts every request attempted.
    """

    def __init__(self, settings: ClientSettings, prices: TeacherPrices):
        self.settings, self.prices = settings, prices
        self.requests_sent = 0

    async def chat(self, messages: list[dict], max_tokens: int | None = None) -> TeacherReply:
        """One request -> its reply at list price. Raises TransientTeacherError (429 with
        `retry_after_s`, 5xx, connection errors, timeouts, unreadable bodies) or
        PermanentTeacherError (400/401/403/404/422, with the server's message)."""
        s = self.settings
        max_tokens = s.max_tokens if max_tokens is None else max_tokens
        api_key = s.request_api_key()
        timeout = s.request_timeout_s(max_tokens)
        self.requests_sent += 1
        try:
            response = await litellm.acompletion(
                model=s.model,
                messages=messages,
                api_base=s.api_base,
                api_key=api_key,
                timeout=timeout,
                max_tokens=max_tokens,
                temperature=s.temperature,
                num_retries=0,
            )
        except Exception as exc:  # noqa: BLE001 - mapped or re-raised just below
            raise map_error(exc, s, timeout) from None
        return self._reply_of(response)

    def _reply_of(self, response: litellm.ModelResponse) -> TeacherReply:
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return TeacherReply(text, prompt_tokens, completion_tokens,
                            self.prices.reply_cost_usd(response, prompt_tokens,
                                                       completion_tokens))


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds from a `Retry-After` / `retry-after-ms` response header of `exc`, else None.

    Accepts delta-seconds (float) and HTTP-dates (RFC 9110 §10.2.3).
    """
    # litellm keeps the provider's headers on `litellm_response_headers` (its `response` is a
    # rebuilt httpx.Response whose headers may be empty); plain openai errors only on `response`.
    headers = (getattr(exc, "litellm_response_headers", None)
               or getattr(getattr(exc, "response", None), "headers", None) or {})
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def map_error(exc: Exception, settings: ClientSettings,
              timeout_s: float | None = None) -> Exception:
    """litellm / transport exception -> Transient- or PermanentTeacherError (others as is).

    A transient error's message is one line: "teacher MODEL at ENDPOINT: CAUSE; SETTING
    advice" (connection refused / unknown host -> teacher.api_base; no reply within
    timeout_s -> teacher.timeout_s; 429 -> teacher.rpm_limit / tpm_limit). The key of
    `settings` never appears in a message."""
    status = _status_of(exc)
    where = f"teacher {settings.model} at {settings.endpoint}"
    text = _one_line(settings.redact(str(exc)))
    chain = _causes(exc)
    if "missing credentials" in text.lower() or any(
            "api_key client option must be set" in str(c) for c in chain):
        return TeacherAuthError(f"{where}: no API key; set teacher.api_key_env (the name of "
                                "the variable holding it) or the provider's own variable")
    transient_status = status is not None and (status >= 500 or status in (408, 429))
    if isinstance(exc, _TRANSIENT) or transient_status:
        wait = retry_after_s(exc)
        cause = _transient_cause(exc, chain, status, text, timeout_s, settings)
        logger.info("%s: transient failure (HTTP %s): %s", where, status, text)
        return TransientTeacherError(f"{where}: {cause}", wait)
    if isinstance(exc, _AUTH) or status in (401, 403):
        return TeacherAuthError(f"{where}: the API key was rejected (HTTP {status}): {text}; "
                                "check teacher.api_key_env / teacher.api_key_secret")
    if isinstance(exc, _PERMANENT) or (status is not None and 400 <= status < 500):
        return PermanentTeacherError(f"{where}: request rejected (HTTP {status}): {text}")
    return TeacherError(f"{where}: unexpected {type(exc).__name__}: {text}")


def _transient_cause(exc: Exception, chain: list[BaseException], status: int | None,
                     text: str, timeout_s: float | None, settings: ClientSettings) -> str:
    """The cause of a transient failure and the setting that changes it, in words."""
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return ("connection refused: no server listens there; start it, or check "
                "teacher.api_base (--teacher-api-base)")
    if any(isinstance(c, socket.gaierror) for c in chain):
        return "unknown host name; check teacher.api_base (--teacher-api-base)"
    timed_out = (isinstance(exc, (litellm.Timeout, TimeoutError)) or status == 408
                 or any(isinstance(c, TimeoutError) or "Timeout" in type(c).__name__
                        for c in chain))
    if timed_out:
        limit = f"{timeout_s:g} s" if timeout_s is not None else "the timeout"
        how = ("raise teacher.timeout_s, or unset it for a timeout scaled to max_tokens"
               if settings.timeout_s is not None else
               "a slower server needs more: lower teacher.min_tokens_per_s "
               f"(now {settings.min_tokens_per_s:g} tokens/s) or set teacher.timeout_s")
        return f"no reply within {limit} (timed out); {how}"
    if status == 429:
        return (f"rate limited (HTTP 429): {text}; set teacher.rpm_limit / "
                "teacher.tpm_limit below the provider's limits")
    if isinstance(exc, litellm.APIConnectionError) or any(
            "Connect" in type(c).__name__ for c in chain):
        return (f"cannot connect or the connection dropped ({text}); check "
                "teacher.api_base (--teacher-api-base) and that the server is up")
    return f"server error (HTTP {status}): {text}"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during (at most 16)."""
    out: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(out) < 16:
        out.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return out


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line (whitespace runs collapsed), at most `limit` characters."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None
