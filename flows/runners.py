"""The Prefect task runner that a run's sampling / probe shards are submitted to (config `runner`).

`kind: sequential` (default): a one-thread pool, so shards run one after another exactly as
an inline loop would. `kind: dask`: prefect-dask's `DaskTaskRunner` on a Dask cluster —
either a `distributed.LocalCluster` of `n_workers` processes on 127.0.0.1 started here for
the whole run (one task thread and `torch_threads` torch threads per worker), or the running
scheduler at `address` (workers started with `dask worker --nthreads 1`). Dask over Ray:
see README "Scaling".

Workers must reach the Prefect API the flow uses: a local cluster gets the flow's API URL
(the ephemeral server's too) in its environment; workers of an external cluster need
`PREFECT_API_URL` set. Shard inputs, outputs and Prefect results are paths under the run
dir, so workers must share its filesystem (docs/design.md §3: tasks pass paths + hashes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from elad_core.elad.config import RunnerConfig

try:  # a Dask worker plugin; without distributed installed only "sequential" works
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a dependency (pyproject)
    WorkerPlugin = object  # type: ignore[assignment,misc]


class TorchThreads(WorkerPlugin):
    """Sets torch's intra-op threads in every worker of the cluster, present and future."""

    def __init__(self, n: int) -> None:
        self.n = n

    def setup(self, worker) -> None:
        import torch

        torch.set_num_threads(self.n)


def _api_url() -> str | None:
    """The Prefect API URL this process talks to (the ephemeral server's when none is set)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url) or None


def worker_environ(torch_threads: int) -> dict[str, int | None]:
    """Dask config `distributed.nanny.pre-spawn-environ` for student workers.

    Thread counts as asked, and no `MALLOC_TRIM_THRESHOLD_`: Dask's default (65536) also
    pins glibc's mmap threshold, so torch's per-token allocations map and unmap pages and
    sampling ran 2.2x slower (1,371 vs 3,073 new tokens/s, one thread, measured here).
    """
    return {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": torch_threads,
            "MKL_NUM_THREADS": torch_threads, "OPENBLAS_NUM_THREADS": torch_threads}


@contextlib.contextmanager
def local_dask_cluster(n_workers: int, torch_threads: int) -> Iterator[str]:
    """A LocalCluster of `n_workers` processes on 127.0.0.1; yields its scheduler address.

    Each worker: one task thread (one shard at a time), `torch_threads` torch threads,
    `worker_environ`, this process's Prefect API URL. Closed (workers stopped) on exit.
    """
    import dask
    from distributed import Client, LocalCluster

    spawn_env = worker_environ(torch_threads)
    env = {k: str(v) for k, v in spawn_env.items() if v is not None}  # also for restarted workers
    if api := _api_url():
        env["PREFECT_API_URL"] = api
    saved = {k: os.environ.get(k) for k in spawn_env}
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in spawn_env.items()}), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=":0", env=env) as cluster, \
            Client(cluster, set_as_default=False) as client:
        _restore_environ(saved)  # the nanny wrote the workers' variables into ours: undo that
        client.register_plugin(TorchThreads(torch_threads), name="elad-torch-threads")
        yield cluster.scheduler_address


def _restore_environ(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def task_runner(cfg: RunnerConfig) -> Iterator[TaskRunner]:
    """The task runner for every round of one run (a local cluster lives as long as this).

    Raises ImportError naming the package when kind is "dask" and prefect-dask is missing.
    """
    if cfg.kind == "sequential":
        yield ThreadPoolTaskRunner(max_workers=1)
        return
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - a dependency (pyproject)
        raise ImportError("runner.kind 'dask' needs prefect-dask: pip install prefect-dask") from exc
    if cfg.address:
        yield DaskTaskRunner(address=cfg.address)
        return
    with local_dask_cluster(cfg.n_workers, cfg.torch_threads) as address:
        yield DaskTaskRunner(address=address)
