"""The project's exception hierarchy: messages say what went wrong and what to do."""


class EladError(Exception):
    """Base class of every error this project raises on purpose."""


class DataError(EladError):
    """A data file or row is unusable; the message names file, line and field."""


class ConfigError(EladError):
    """A configuration value is invalid; the message names the option."""


class TeacherError(EladError):
    """A teacher call failed."""


class TransientTeacherError(TeacherError):
    """Retry-able failure (429, 5xx, timeout, dropped connection).

    `retry_after_s` carries the server's `Retry-After` hint when it gave one; `completed`
    the results of a batch that did finish, so a retry need not pay for them again.
    """

    def __init__(self, message: str, retry_after_s: float | None = None, completed: list | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.completed = completed or []


class PermanentTeacherError(TeacherError):
    """Failure that a retry cannot fix (400, 404, 422, unknown question): that sample fails."""


class TeacherAuthError(PermanentTeacherError):
    """The provider rejected the credentials (401 / 403). Every request would fail the same
    way, so the batch stops instead of recording each question as failed (and caching that)."""


def sample_error(exc: PermanentTeacherError) -> str:
    """The error recorded on the one sample (question, teacher call) that a permanent failure
    fails. A TeacherAuthError is raised again instead: every request would fail the same way,
    so the batch stops."""
    if isinstance(exc, TeacherAuthError):
        raise exc
    return str(exc)
