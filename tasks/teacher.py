"""The teacher session and retry policy of every teacher task, ELAD's and EvoKD's
(docs/design.md §2 step 4, §2.5, §3).

`teacher_task` is the one Prefect task decorator of a teacher call: cached on what decides
the reply (the task's inputs minus the endpoint address, the whole config and the run dir;
`TeacherConfig.reply_key` is the slice that is in the key), retried on transient failures
only (429, 5xx, timeouts: `TransientTeacherError`) with exponential backoff + jitter.

`teacher_session` is the one way a task talks to the teacher: a `TeacherClient` with the
task's reply journal (every reply paid for is written before it is used, so a retried or
resumed task pays no request twice; elad_core.teacher.journal), the client-side rate limits
(tasks/limits.py), a slot of the server-wide teacher concurrency limit while requests are in
flight, `Retry-After` waited out before Prefect retries, and the requests sent / replies
replayed counted per run (`RUN_COUNTS`, keyed by the run dir), not per process.

The API key of a Prefect Secret block (`teacher.api_key_secret`) is resolved in the task
body and never passed as a parameter (Prefect would persist it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from prefect import task
from prefect.concurrency.sync import concurrency
from prefect.tasks import exponential_backoff

from elad_core.errors import ConfigError, TransientTeacherError
from elad_core.run_summary import Invocation
from elad_core.teacher.client import TeacherClient
from elad_core.teacher.config import TeacherConfig
from elad_core.teacher.journal import ReplyJournal
from tasks import CONTENT_CACHE
from tasks.limits import rate_limiter

MAX_RETRY_AFTER_S = 120.0


class Counts(NamedTuple):
    """Teacher requests of one run: sent, replayed from a batch's journal (paid earlier in
    this run), reused from the cross-run reply cache (paid by another run)."""

    sent: int = 0
    replayed: int = 0
    reused: int = 0


class RunCounts:
    """Teacher request counts of this process, per run (keyed by the run dir): runs going on
    at once in one process (threads) each count only their own."""

    def __init__(self) -> None:
        self._lock, self._runs = threading.Lock(), {}

    def add(self, run: str, sent: int, replayed: int, reused: int = 0) -> None:
        with self._lock:
            old = self._runs.get(run, Counts())
            self._runs[run] = Counts(old.sent + sent, old.replayed + replayed,
                                     old.reused + reused)

    def get(self, run: str) -> Counts:
        """The counts for `run` so far."""
        with self._lock:
            return self._runs.get(run, Counts())

    def pop(self, run: str) -> Counts:
        """get(run), then forget the run (its flow is over)."""
        with self._lock:
            return self._runs.pop(run, Counts())

    def __reduce__(self):
        # a Dask runner pickles the round flow with the tasks it references: a copy in
        # another process counts that process's requests, so it starts empty
        return (RunCounts, ())


RUN_COUNTS = RunCounts()  # each flow reads (and at its start resets) its run's counts here


def finish_invocation(run_dir: Path, t0: float) -> Invocation:
    """What both summaries (RunSummary, EvoKDSummary) end with: this invocation's teacher
    requests (RUN_COUNTS of run_dir, then forgotten: its flow is over) and its wall time (s)
    since t0, the time.perf_counter() of its start."""
    counts = RUN_COUNTS.pop(str(run_dir))
    return Invocation(counts.sent, counts.replayed, counts.reused,
                      round(time.perf_counter() - t0, 3))


def _transient(task, task_run, state) -> bool:
    try:
        state.result()
    except TransientTeacherError:
        return True
    except Exception:
        return False
    return False


def teacher_task(fn: Callable) -> Callable:
    """The Prefect task of a teacher call. `fn` takes `teacher_cfg` (the whole TeacherConfig),
    `api_base` and `run`, left out of the cache key by these parameter names, besides what
    decides the reply (`teacher_key`: TeacherConfig.reply_key's slice, in the key)."""
    return task(cache_policy=CONTENT_CACHE - "api_base" - "teacher_cfg" - "run",
                retry_condition_fn=_transient, retries=4,
                retry_delay_seconds=exponential_backoff(backoff_factor=1),
                retry_jitter_factor=0.5)(fn)


def with_retry_policy(teacher_task_, cfg: TeacherConfig):
    """`teacher_task_` with the configured retries and first backoff (teacher.retries,
    teacher.retry_delay_s; doubling, with jitter)."""
    return teacher_task_.with_options(
        retries=cfg.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=cfg.retry_delay_s))


@contextlib.contextmanager
def teacher_session(cfg: TeacherConfig, api_base: str | None, out_path: Path,
                    run: str | None) -> Iterator[TeacherClient]:
    """A client for one teacher task writing `out_path`: its journal is
    `<out_path stem>.journal.jsonl` beside it. On TransientTeacherError the session waits
    the reply's Retry-After (at most MAX_RETRY_AFTER_S) and re-raises for Prefect's retry.
    Requests are counted under RUN_COUNTS[run] (skipped when run is None)."""
    out_path = Path(out_path)
    journal = ReplyJournal(out_path.with_name(f"{out_path.stem}.journal.jsonl"))
    client = TeacherClient.from_config(cfg, api_base, api_key=resolve_api_key(cfg),
                                       journal=journal, throttle=rate_limiter(cfg))
    try:  # a slot of the server-wide teacher limit while requests are in flight (none if unset)
        with concurrency(cfg.concurrency_limit or []):
            yield client
    except TransientTeacherError as exc:
        if exc.retry_after_s:
            time.sleep(min(exc.retry_after_s, MAX_RETRY_AFTER_S))
        raise
    finally:
        if run is not None:
            RUN_COUNTS.add(run, client.requests_sent, client.replayed,
                           client.reused)


def resolve_api_key(cfg: TeacherConfig) -> str | None:
    """The key of Prefect Secret block `cfg.api_key_secret` (None when unset).

    Call it inside a task or flow body only: the value must never become a parameter.
    Raises ConfigError when the block does not exist.
    """
    if not cfg.api_key_secret:
        return None
    from prefect.blocks.system import Secret

    try:
        return Secret.load(cfg.api_key_secret).get()
    except ValueError:
        raise ConfigError(
            f"teacher.api_key_secret: no Prefect Secret block named {cfg.api_key_secret!r}; "
            "create one (prefect.blocks.system.Secret(value=...).save(name)) on this server"
        ) from None
