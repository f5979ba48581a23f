"""Teacher batch task: annotate one batch of selected questions (docs/design.md §2 step 4, §3).

Cached on what decides the output (requests, annotator, the teacher slice, prompt
version), never on the endpoint address. Transient failures (429, 5xx, timeouts) are
retried here and only here, with exponential backoff + jitter; `Retry-After` is honoured
by waiting that long before the retry. A retry sends only the requests that failed: rows
already annotated are kept in a partial file keyed on the batch's content, and every reply
paid for is journaled (`elad_core.teacher_journal`) before it is used, so a CLEAR dialogue
resumed after a failed turn or a killed process pays no turn twice. Permanent failures are
recorded per question (status "failed"); a rejected API key (401/403) stops the batch.

The API key of a Prefect Secret block (`teacher.api_key_secret`) is resolved here, in the
task body, and never passed as a parameter (Prefect would persist it). Client-side rate
limits (`teacher.rpm_limit`, `teacher.tpm_limit`) are Prefect global rate limits, awaited
before each request (tasks/teacher_limits.py). `teacher.processes` > 1 spreads a batch's
questions over that many worker processes (elad_core.teacher_processes; issue #7).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from prefect import task
from prefect.concurrency.sync import concurrency
from prefect.tasks import exponential_backoff

from elad_core.annotators import AnnotationRequest
from elad_core.config import TeacherConfig
from elad_core.errors import ConfigError, TransientTeacherError
from elad_core.files import hash_file, hash_json, read_parquet, write_parquet
from elad_core.records import Annotation, from_rows, to_rows
from elad_core.rounds import mark_teacher_agreement
from elad_core.teacher_client import TeacherClient
from elad_core.teacher_journal import ReplyJournal
from elad_core.teacher_processes import annotate_requests
from tasks import CONTENT_CACHE
from tasks.teacher_limits import rate_limiter


class RequestCounter:
    """Teacher requests this process actually sent (cached tasks send none)."""

    def __init__(self) -> None:
        self._lock, self.value = threading.Lock(), 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n

    def __reduce__(self):
        # a Dask runner pickles the round flow with the tasks it references: a copy in
        # another process counts that process's requests, so it starts as a fresh counter
        return (RequestCounter, ())


class RunCounts:
    """Teacher requests sent and replies replayed by this process, per run (keyed by the run
    dir): runs going on at once in one process (threads) each count only their own."""

    def __init__(self) -> None:
        self._lock, self._runs = threading.Lock(), {}

    def add(self, run: str, sent: int, replayed: int) -> None:
        with self._lock:
            counts = self._runs.setdefault(run, [0, 0])
            counts[0] += sent
            counts[1] += replayed

    def get(self, run: str) -> tuple[int, int]:
        """(requests sent, replies replayed) for `run` so far."""
        with self._lock:
            sent, replayed = self._runs.get(run, (0, 0))
            return sent, replayed

    def pop(self, run: str) -> tuple[int, int]:
        """get(run), then forget the run (its flow is over)."""
        with self._lock:
            sent, replayed = self._runs.pop(run, (0, 0))
            return sent, replayed

    def __reduce__(self):  # as RequestCounter: a copy in another process starts empty
        return (RunCounts, ())


RUN_COUNTS = RunCounts()  # the active-distillation flow reads its run's counts from here
# process-wide totals (every run of this process together), read by the EvoKD flow
REQUESTS_SENT = RequestCounter()
REPLAYED = RequestCounter()  # teacher replies served from a batch's journal, not re-sent
MAX_RETRY_AFTER_S = 120.0


def _transient(task, task_run, state) -> bool:
    try:
        state.result()
    except TransientTeacherError:
        return True
    except Exception:
        return False
    return False


@task(cache_policy=CONTENT_CACHE - "api_base" - "teacher_cfg" - "run",
      retry_condition_fn=_transient, retries=4,
      retry_delay_seconds=exponential_backoff(backoff_factor=1), retry_jitter_factor=0.5)
def annotate_batch_task(annotator: str, requests: list[dict], teacher_key: dict, teacher_cfg: dict,
                        api_base: str | None, family: str, out_path: Path,
                        gold: dict[str, str | None] | None = None, run: str | None = None) -> dict:
    """Annotate one batch -> annotations parquet. Returns path, hash, tokens, cost, statuses.

    teacher_key: the slice of the teacher config that decides replies (the cache key);
    teacher_cfg: the whole TeacherConfig as a dict (endpoint, concurrency, timeouts).
    gold: question_id -> gold answer, where the pool has one: each annotation records whether
    the teacher agrees with it (`teacher_agrees`; rounds.mark_teacher_agreement).
    run: the run dir whose RUN_COUNTS entry counts the requests (not part of the cache key).
    Raises TransientTeacherError (retried by Prefect) when any request failed transiently.
    """
    cfg = TeacherConfig(**teacher_cfg)
    out_path = Path(out_path)
    journal = ReplyJournal(out_path.with_name(f"{out_path.stem}.journal.jsonl"))
    client = TeacherClient.from_config(cfg, api_base, api_key=resolve_api_key(cfg),
                                       journal=journal, throttle=rate_limiter(cfg))
    reqs = [AnnotationRequest(**r) for r in requests]
    # rows paid for by an earlier attempt (or a killed run) of this very batch are kept
    key = hash_json([annotator, requests, teacher_key, family])[:16]
    partial = out_path.parent / f".{out_path.stem}.{key}.partial.parquet"
    done = from_rows(Annotation, read_parquet(partial)) if partial.exists() else []
    done_ids = {a.question_id for a in done}
    try:  # a slot of the server-wide teacher limit while requests are in flight (none if unset)
        with concurrency(cfg.concurrency_limit or []):
            new = annotate_requests(client, annotator,
                                    [r for r in reqs if r.question_id not in done_ids], family,
                                    teacher_key["max_clear_turns"], cfg.processes)
    except TransientTeacherError as exc:
        write_parquet(partial, to_rows(done + exc.completed))
        if exc.retry_after_s:
            time.sleep(min(exc.retry_after_s, MAX_RETRY_AFTER_S))
        raise
    finally:
        REQUESTS_SENT.add(client.requests_sent)
        REPLAYED.add(client.replayed)
        if run is not None:
            RUN_COUNTS.add(run, client.requests_sent, client.replayed)
    by_id = {a.question_id: a for a in done + new}
    annotations = mark_teacher_agreement([by_id[r.question_id] for r in reqs], gold or {})
    write_parquet(out_path, to_rows(annotations))
    partial.unlink(missing_ok=True)
    return {"path": str(out_path), "sha": hash_file(out_path),
            "teacher_tokens": sum(a.teacher_tokens for a in annotations),
            "cost_usd": sum(a.cost_usd for a in annotations),
            "statuses": [a.status for a in annotations]}


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
