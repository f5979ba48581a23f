"""Deployments on a Prefect server (docs/design.md §3): what `elad deploy` and `elad serve` do.

`elad deploy` readies the server that PREFECT_API_URL names for deployments/prefect.yaml: it
creates the process work pools its deployments use and the global concurrency limits their
`config` parameters name (`teacher.concurrency_limit`, `student.concurrency_limit`), if
missing, then runs Prefect's own `prefect deploy --prefect-file ... --all` from the project
root. `serve` is the no-worker path: this process registers a deployment and runs its flow
runs itself (`Flow.serve`) until stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from elad_core.elad.config import RunConfig
from elad_core.errors import ConfigError, EladError

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT_FILE = PROJECT_DIR / "deployments" / "prefect.yaml"
LIMIT_PARTS = ("teacher", "student")  # RunConfig groups that carry a `concurrency_limit`


def api_url() -> str:
    """The Prefect server's API URL; raises EladError when none is configured."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise EladError("PREFECT_API_URL is not set: start a server (`prefect server start`) and "
                        "run `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`")
    return url


def server_needs(prefect_file: Path) -> tuple[set[str], dict[str, str]]:
    """(work pool names, {limit name: "teacher" | "student"}) that prefect_file's deployments use.

    Raises ConfigError when the file is missing or a deployment's `config` is not a valid
    RunConfig (so nothing is created for a file the server would reject).
    """
    try:
        spec = yaml.safe_load(Path(prefect_file).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{prefect_file}: prefect file not found") from None
    pools: set[str] = set()
    limits: dict[str, str] = {}
    for dep in spec.get("deployments") or []:
        where = f"{prefect_file}: deployment {dep.get('name')!r}"
        if not (dep.get("work_pool") or {}).get("name"):
            raise ConfigError(f"{where}: no work_pool.name")
        pools.add(dep["work_pool"]["name"])
        try:
            config = RunConfig.model_validate((dep.get("parameters") or {}).get("config") or {})
        except ValueError as exc:
            raise ConfigError(f"{where}: parameter 'config' is not a valid run config: {exc}") from None
        for part in LIMIT_PARTS:
            if name := getattr(config, part).concurrency_limit:
                limits[name] = part
    return pools, limits


def prepare_server(pools: set[str], limits: dict[str, int]) -> list[str]:
    """Create the missing process work pools and global concurrency limits ({name: slots}).

    Existing ones are left as they are. Returns one line per pool / limit saying what it found.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        WorkPoolCreate,
    )

    report = []
    with get_client(sync_client=True) as client:
        for name in sorted(pools):
            pool = _read_or_create(
                lambda: client.read_work_pool(name),
                lambda: client.create_work_pool(WorkPoolCreate(name=name, type="process")))
            report.append(f"work pool {name!r} exists (type {pool.type})" if pool is not None
                          else f"created process work pool {name!r}")
        for name, slots in sorted(limits.items()):
            gcl = _read_or_create(
                lambda: client.read_global_concurrency_limit_by_name(name),
                lambda: client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots)))
            report.append(f"global concurrency limit {name!r} exists ({gcl.limit} slots)"
                          if gcl is not None
                          else f"created global concurrency limit {name!r} ({slots} slots)")
    return report


def _read_or_create(read: Callable[[], Any], create: Callable[[], Any]) -> Any:
    """What read() finds on the server, or None after create() made it (ObjectNotFound)."""
    from prefect.exceptions import ObjectNotFound

    try:
        return read()
    except ObjectNotFound:
        create()
        return None


def ready_server(prefect_file: Path = PREFECT_FILE, teacher_slots: int = 4,
                 gpu_slots: int = 1) -> list[str]:
    """Create what prefect_file's deployments need on the server; returns the report lines.

    teacher_slots / gpu_slots: slots of teacher / student limits created here (existing
    limits keep theirs). Raises EladError without PREFECT_API_URL, ConfigError on a bad file.
    """
    api_url()
    pools, limits = server_needs(prefect_file)
    slots = {"teacher": teacher_slots, "student": gpu_slots}
    return prepare_server(pools, {name: slots[part] for name, part in limits.items()})


def prefect_deploy(prefect_file: Path = PREFECT_FILE, names: list[str] | None = None) -> None:
    """Run `prefect deploy --prefect-file <file> --all` (or `--name` each) from the project root.

    ELAD_PROJECT_DIR (the folder workers run the flows from, prefect.yaml's pull step)
    defaults to this checkout. Output goes to this process's stdout. Raises EladError if it fails.
    """
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy",
           "--prefect-file", str(Path(prefect_file).resolve())]
    cmd += [arg for n in names for arg in ("--name", n)] if names else ["--all"]
    env = {"ELAD_PROJECT_DIR": str(PROJECT_DIR), **os.environ}
    done = subprocess.run(cmd, cwd=PROJECT_DIR, env=env, check=False)
    if done.returncode != 0:
        raise EladError(f"`prefect {' '.join(cmd[3:])}` failed with exit code {done.returncode} "
                        "(its output is above)")


def serve(config: RunConfig, name: str = "elad-serve", cron: str | None = None,
          tags: list[str] | None = None, limit: int = 1) -> None:
    """Register deployment active-distillation/<name> and run its flow runs here until stopped.

    The deployment's parameter is `config` with runs_dir made absolute (runs land where this
    process was started). cron: optional schedule (UTC). limit: flow runs at once.
    """
    api_url()
    from prefect.types.entrypoint import EntrypointType

    from flows.elad.loop import active_distillation

    config = config.model_copy(update={"runs_dir": config.runs_dir.resolve()})
    active_distillation.serve(name=name, cron=cron, tags=tags or ["elad"], limit=limit,
                              parameters={"config": config.model_dump(mode="json")},
                              entrypoint_type=EntrypointType.MODULE_PATH)
