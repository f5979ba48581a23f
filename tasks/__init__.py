"""Prefect tasks: each wraps one elad_core step in a few lines (docs/design.md §3).

Expensive tasks are cached on content (`CONTENT_CACHE`: their inputs, which carry content
hashes of files and adapters plus the config slice, and the task's source), with results
persisted under the run directory (`in_run`). Tasks pass paths + hashes, never models.
"""

from __future__ import annotations

from pathlib import Path

from prefect import Task
from prefect.cache_policies import INPUTS, TASK_SOURCE

CONTENT_CACHE = INPUTS + TASK_SOURCE


def in_run(task: Task, run_dir: Path) -> Task:
    """The task with its results (and cache records) persisted under `run_dir/.prefect`."""
    return task.with_options(result_storage=Path(run_dir).resolve() / ".prefect")
