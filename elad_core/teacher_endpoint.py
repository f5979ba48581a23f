"""Where teacher requests go: the configured API, or a local oracle started for the run.

docs/design.md §2.4: with `teacher.model == "oracle"` and no `api_base`, the oracle teacher
server (a test double answering from gold rationales) is started on a free loopback port
for the duration of the run and stopped at the end. Any other model string is used as is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from elad_core.config import TeacherConfig
from elad_core.records import Example


@contextlib.contextmanager
def teacher_endpoint(
    cfg: TeacherConfig, examples: list[Example], request_log: Path | None = None
) -> Iterator[str | None]:
    """Yield the api_base to call (None: litellm's provider default)."""
    if cfg.model != "oracle" or cfg.api_base is not None:
        yield cfg.api_base
        return
    from elad_core.teacher_oracle import OracleJudge
    from elad_core.teacher_oracle_server import FaultConfig, OracleServer

    faults = FaultConfig(**cfg.oracle.model_dump())
    with OracleServer(OracleJudge(examples), faults=faults, request_log=request_log) as server:
        yield server.api_base
