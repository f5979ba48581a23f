"""Spread one teacher batch over worker processes, each with its own event loop (issue #7).

litellm spends about 3 ms of CPU per call on this machine (request building in the openai
SDK, response parsing, its cost and logging bookkeeping), all under one GIL: one event loop
tops out near 300 calls/s however many requests are in flight. With `teacher.processes` = P
> 1 the batch's questions are dealt round-robin to P long-lived worker processes; each runs
the ordinary `annotate_batch` with its own TeacherClient (a share of `max_concurrency`) and
the batch's reply journal, so replies, token usage, costs, journal lines and error mapping
are those of the single-process path. A question's whole dialogue stays in one worker.

Workers are forked from a forkserver that has imported litellm once (spawn where forkserver
is missing), kept for the life of the process, and die with it (Linux: PR_SET_PDEATHSIG), so a
killed run leaves no worker sending requests. Client-side rate limits (a `throttle`) are
Prefect objects of the calling process: a client with one runs in-process.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import multiprocessing
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from elad_core.elad.annotators import AnnotationRequest, annotate_batch
from elad_core.explanations.records import Annotation
from elad_core.errors import TransientTeacherError
from elad_core.teacher.client import ClientSettings, TeacherClient
from elad_core.teacher.journal import ReplyJournal

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def annotate_requests(client: TeacherClient, annotator: str, requests: list[AnnotationRequest],
                      family: str = "number", max_turns: int = 16,
                      processes: int = 1, answer_turn: bool | str = "auto") -> list[Annotation]:
    """`annotate_batch` on up to `processes` worker processes; same contract.

    Returns one Annotation per request, in request order; raises TransientTeacherError
    (message "N of M teacher requests failed transiently ...", the largest retry_after_s,
    `completed` = every annotation that finished in any worker) after all workers are done,
    or the first other error (e.g. TeacherAuthError). In-process when processes is 1, the
    client has a throttle, or there are fewer than 2 requests. Adds the workers' requests
    sent and journal replays to `client.requests_sent` / `client.replayed`.
    """
    n = min(processes, len(requests), client.max_concurrency)
    if n < 2 or client.throttle is not None:
        return annotate_batch(client, annotator, requests, family, max_turns, answer_turn)
    parts = [requests[i::n] for i in range(n)]
    shares = [client.max_concurrency // n + (i < client.max_concurrency % n) for i in range(n)]
    journal = str(client.journal.path) if client.journal is not None else None
    jobs = [(client.worker_settings(max_concurrency=c), journal, annotator, part, family, max_turns,
             answer_turn) for part, c in zip(parts, shares, strict=True)]
    results = _run(jobs)
    for r in results:
        client.add_counts(r["sent"], r["replayed"], r.get("reused", 0))
    errors = [r["error"] for r in results if r["error"] is not None]
    if errors:
        raise errors[0]
    done = {a.question_id: a for r in results for a in r["annotations"]}
    transient = [r["transient"] for r in results if r["transient"] is not None]
    if transient:
        failed = len(requests) - len(done)
        hints = [t[1] for t in transient if t[1] is not None]
        raise TransientTeacherError(
            f"{failed} of {len(requests)} teacher requests failed transiently "
            f"(first: {transient[0][0]}); retry the batch",
            retry_after_s=max(hints) if hints else None, completed=list(done.values()))
    return [done[r.question_id] for r in requests]


def _run(jobs: list[tuple]) -> list[dict]:
    """Run each job on the pool; wait for all. A dead worker -> TransientTeacherError."""
    pool = _pool(len(jobs))
    try:
        futures = [pool.submit(_annotate_part, *job) for job in jobs]
        return [f.result() for f in futures]
    except BrokenProcessPool as exc:
        _reset_pool()
        raise TransientTeacherError(f"a teacher worker process died ({exc}); retry the batch",
                                    completed=[]) from None


def _annotate_part(settings: ClientSettings, journal_path: str | None, annotator: str,
                   requests: list[AnnotationRequest], family: str, max_turns: int,
                   answer_turn: bool | str = "auto") -> dict:
    """Worker side: annotate one share -> {"annotations", "transient", "error", "sent",
    "replayed"}; a transient failure returns what finished, other errors are returned too
    (the caller waits for every share before raising)."""
    journal = ReplyJournal(Path(journal_path)) if journal_path else None
    client = TeacherClient(settings=settings, journal=journal)
    out = {"annotations": [], "transient": None, "error": None}
    try:
        out["annotations"] = annotate_batch(client, annotator, requests, family, max_turns,
                                            answer_turn)
    except TransientTeacherError as exc:
        out["annotations"], out["transient"] = exc.completed, (str(exc), exc.retry_after_s)
    except Exception as exc:  # noqa: BLE001 - re-raised by the caller after all shares end
        out["error"] = exc
    return {**out, "sent": client.requests_sent, "replayed": client.replayed,
            "reused": client.reused}


def _pool(size: int) -> ProcessPoolExecutor:
    """The process-wide worker pool with at least `size` workers (created on first use)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < size:
            if _POOL is not None:
                _POOL.shutdown(wait=True)
            _POOL, _POOL_SIZE = ProcessPoolExecutor(size, mp_context=_context(),
                                                    initializer=_init_worker), size
        return _POOL


def _reset_pool() -> None:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=False, cancel_futures=True)
        _POOL, _POOL_SIZE = None, 0


def _context() -> multiprocessing.context.BaseContext:
    """forkserver with litellm preloaded (each worker starts in milliseconds); else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _init_worker() -> None:
    """Die with the parent (Linux): a killed run must not leave a worker sending requests."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            logger.debug("PR_SET_PDEATHSIG unavailable; worker outlives a killed parent")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


atexit.register(_reset_pool)
