"""How the `elad` CLI ends on bad input: one line on stderr, `error: <what went wrong and what
to change>`, and exit code 2, for usage errors (click's) and the product's own errors alike;
no traceback, neither from the CLI nor from Prefect's log of a failed task."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from elad_core.errors import EladError, TransientTeacherError


class OneLineErrors(TyperGroup):
    """A usage error (unknown option or command, bad or unknown value) ends with one line on
    stderr and its exit code (2), like the CLI's other input errors, instead of a usage block
    and a boxed message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except typer.TyperException as exc:  # click's ClickException and its usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `elad`: the help, as typer
                if exc.format_message().strip():
                    exc.show()
            else:
                msg = exc.format_message().replace(": Value error, ", ": ")
                ctx = getattr(exc, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                typer.secho(f"error: {msg}{hint}", fg=typer.colors.RED, err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(rv if isinstance(rv, int) else 0)  # an Exit's code (non-standalone)



def fail(exc: Exception, teacher: Any = None) -> None:
    """End with one line on stderr, `error: <what went wrong and what to change>`, exit 2.

    teacher: the run's TeacherConfig; a TransientTeacherError is then a batch whose
    retries are spent, and the line says so and that a rerun resumes."""
    typer.secho(f"error: {one_line_error(exc, teacher)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


# annotators.annotate_batch's message for a batch with transient failures
_BATCH_FAILED = re.compile(r"(\d+) of (\d+) teacher requests failed transiently "
                           r"\(first: (.*)\); retry the batch")


def one_line_error(exc: Exception, teacher: Any = None) -> str:
    """The message of `exc` on one line; for a teacher batch whose retries are spent (a
    TransientTeacherError reaching the CLI): the first request's failure (endpoint, cause,
    setting to change: elad_core.teacher.client), how many failed after how many attempts,
    and that a rerun pays nothing already received (reply journal, partial batch, cache)."""
    msg = re.sub(r"\s*\n\s*", " ", str(exc).strip())
    if isinstance(exc, TransientTeacherError) and teacher is not None:
        m = _BATCH_FAILED.fullmatch(msg)
        what = f"{m[1]} of {m[2]} requests of a teacher batch" if m else "the teacher call"
        msg = (f"{m[3] if m else msg} ({what} still failing after {teacher.retries + 1} "
               f"attempt(s), teacher.retries {teacher.retries}); the same command resumes the "
               "run, paying nothing already received")
    return msg


class _NoTracebackForEladErrors(logging.Filter):
    """Drops the traceback from a log record (Prefect's "Task run failed", "Encountered
    exception") whose exception is one of ours: its message says what went wrong, and the
    CLI ends with it on one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EladError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_errors() -> None:
    """Install _NoTracebackForEladErrors on the handlers that print (root's, Prefect's)."""
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _NoTracebackForEladErrors) for f in handler.filters):
                handler.addFilter(_NoTracebackForEladErrors())
