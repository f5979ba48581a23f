"""Where teacher requests go: the configured API, or a local oracle started for the run.

docs/design.md §2.4: with `teacher.model == "oracle"` and no `api_base`, an oracle teacher
server (a test double: ELAD's answers from gold rationales, EvoKD's labels and texts from
held-out data) is started on a free loopback port for the duration of the run and stopped at
the end. Any other model string is used as is. One context for both methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from elad_core.teacher.config import TeacherConfig


@contextlib.contextmanager
def teacher_endpoint(cfg: TeacherConfig, judge_factory: Callable[[], object],
                     request_log: Path | None = None) -> Iterator[str | None]:
    """Yield the api_base to call (None: litellm's provider default).

    judge_factory: () -> the oracle's judge (elad_core.elad.oracle_judge.OracleJudge for
    ELAD, elad_core.evokd.oracle_judge.EvoKDOracleJudge for EvoKD), called only when the
    oracle is started. request_log: the oracle's JSONL log of requests received.
    """
    if cfg.model != "oracle" or cfg.api_base is not None:
        yield cfg.api_base
        return
    from elad_core.teacher.oracle.server import FaultConfig, OracleServer

    faults = FaultConfig(**cfg.oracle.model_dump(exclude={"reply_style"}))  # the judge's
    with OracleServer(judge_factory(), faults=faults, request_log=request_log) as server:
        yield server.api_base
