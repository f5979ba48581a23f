"""Deployments on a real Prefect server (docs/design.md §3, issue #5).

Fast: every deployment in deployments/prefect.yaml carries a valid RunConfig; the compose
file validates (skipped where no `docker compose` / `docker-compose` client is installed).
Slow: `prefect server start` on 127.0.0.1 -> `elad deploy` -> a process worker -> one tiny run
of the `smoke` deployment with oracle fault injection -> the round artifacts and the retried
teacher batch read back through the Prefect client; the cron schedule makes runs; `elad serve`
registers its deployment.
Everything started is stopped, the worker and the served process before the server.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ROOT as CHECKOUT

from elad_core.elad.config import RunConfig

ROOT = CHECKOUT
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
BIN = Path(sys.executable).parent
# seeded oracle faults (the same draws for the same prompts): 15% of requests answer HTTP 500,
# so teacher batches fail and are retried; a CLEAR question takes ~4 requests, so 12 retries
# leave a question unannotated with odds of about 1e-4
FAULTS = {"error_rate": 0.15, "seed": 3}


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load(PREFECT_FILE.read_text())["deployments"]}


def test_prefect_yaml_parameters_are_run_configs():
    """Each deployment runs active_distillation with a `config` that RunConfig accepts."""
    deps = deployments()
    assert {"gsm8k-nightly", "smoke"} <= set(deps)
    for d in deps.values():
        assert d["entrypoint"] == "flows/elad/loop.py:active_distillation"
        assert d["enforce_parameter_schema"] is True and d["work_pool"]["name"] == "elad-process"
        cfg = RunConfig.model_validate(d["parameters"]["config"])
        assert (cfg.teacher.concurrency_limit, cfg.student.concurrency_limit) == \
               ("elad-teacher-api", "elad-gpu")
    assert deps["gsm8k-nightly"]["schedules"][0]["cron"] == "0 3 * * *"


def test_server_needs_reads_pools_and_limits():
    from flows.deploy import server_needs

    pools, limits = server_needs(PREFECT_FILE)
    assert pools == {"elad-process"}
    assert limits == {"elad-teacher-api": "teacher", "elad-gpu": "student"}


def _compose() -> list[str] | None:
    """The compose client here: `docker compose` (v2 plugin) or `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    return [shutil.which("docker-compose")] if shutil.which("docker-compose") else None


def test_compose_file_validates(tmp_path):
    compose = _compose()
    if compose is None:
        pytest.skip("no `docker compose` or `docker-compose` client installed; "
                    "run `docker compose -f docker/docker-compose.yml config` where there is one")
    env = {k: v for k, v in os.environ.items()
           if k not in ("POSTGRES_PASSWORD", "PREFECT_API_AUTH_STRING")}
    (tmp_path / "empty.env").write_text("")  # ignore a local docker/.env
    cmd = [*compose, "-f", str(ROOT / "docker" / "docker-compose.yml"), "--env-file",
           str(tmp_path / "empty.env"), "--profile", "gpu", "--profile", "oracle", "config", "-q"]
    ok = subprocess.run(cmd, env={**env, "POSTGRES_PASSWORD": "x", "PREFECT_API_AUTH_STRING": "u:p"},
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    # the secrets are not hard-coded: without them in the environment the file is refused
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr + refused.stdout


# ---------------------------------------------------------------- the slow end-to-end check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout_s: float, what: str, poll_s: float = 1.0):
    """Poll `check()` until it returns something truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@contextlib.contextmanager
def process(cmd: list[str], env: dict, log: Path, stop_timeout_s: float = 30.0):
    """Run cmd in the background (output to log); on exit SIGINT, then kill after a timeout."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@contextlib.contextmanager
def prefect_server(tmp: Path, ui: bool = True):
    """`prefect server start` on 127.0.0.1 with a temporary PREFECT_HOME; yields the client env."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect_home"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_UI_ENABLED": str(ui).lower(),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ELAD_PROJECT_DIR": str(ROOT),
           "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_PROFILE", None)
    log = tmp / "server.log"
    with process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                 env, log) as server:
        def healthy():
            assert server.poll() is None, f"prefect server exited:\n{tail(log)}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200
        wait_for(healthy, 120, "the Prefect server to answer /api/health")
        yield env


def smoke_config(runs_dir: Path) -> dict:
    """The smoke deployment's config with runs under runs_dir and oracle faults injected."""
    cfg = copy.deepcopy(deployments()["smoke"]["parameters"]["config"])
    cfg["runs_dir"] = str(runs_dir)
    cfg["teacher"].update(retries=12, retry_delay_s=0.0, oracle=FAULTS)
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_deployment_runs_on_a_process_worker(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with contextlib.ExitStack() as stack:
        env = stack.enter_context(prefect_server(tmp_path))
        stack.enter_context(temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}))
        t0 = time.monotonic()
        deploy_env = {k: v for k, v in env.items() if k != "ELAD_PROJECT_DIR"}
        deploy = subprocess.run([str(BIN / "elad"), "deploy"], cwd=tmp_path, env=deploy_env,
                                capture_output=True, text=True, timeout=180, check=False)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        check_server_setup()
        worker_log = tmp_path / "worker.log"
        stack.enter_context(process(
            [str(BIN / "prefect"), "worker", "start", "--pool", "elad-process", "--type", "process",
             "--limit", "1"], env, worker_log))
        serve_log = tmp_path / "serve.log"
        (tmp_path / "serve.yaml").write_text(yaml.safe_dump(smoke_config(tmp_path / "served")))
        stack.enter_context(process(
            [str(BIN / "elad"), "serve", "-c", str(tmp_path / "serve.yaml"), "--name", "served"],
            env, serve_log))
        run_id = trigger_smoke_run(tmp_path / "runs")
        final = wait_for(lambda: finished(run_id), 300, "the smoke flow run to finish", poll_s=2)
        assert final.is_completed(), f"{final}\n--- worker log ---\n{tail(worker_log)}"
        print(f"\nsmoke run on the worker: {time.monotonic() - t0:.1f} s after deploy started")
        check_round_artifacts(run_id, smoke_config(tmp_path / "runs"))
        check_retried_teacher_batch(run_id, tmp_path / "runs" / "smoke")
        check_limits_released(worker_log)
        wait_for(lambda: scheduled_runs("gsm8k-nightly"), 90,
                 f"the cron schedule to create runs\n{tail(tmp_path / 'server.log')}")
        wait_for(lambda: deployment_exists("active-distillation/served"), 120,
                 f"`elad serve` to register its deployment\n{tail(serve_log)}")


def check_server_setup() -> None:
    """`elad deploy` made the pool, the two limits and both deployments (schema enforced)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        assert client.read_work_pool("elad-process").type == "process"
        limits = {n: client.read_global_concurrency_limit_by_name(n).limit
                  for n in ("elad-teacher-api", "elad-gpu")}
        assert limits == {"elad-teacher-api": 4, "elad-gpu": 1}
        nightly = client.read_deployment_by_name("active-distillation/gsm8k-nightly")
        assert nightly.enforce_parameter_schema and nightly.schedules[0].schedule.cron == "0 3 * * *"
        smoke = client.read_deployment_by_name("active-distillation/smoke")
        # `elad deploy` fills in the folder workers run the flows from: this checkout
        assert smoke.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                     {"directory": str(ROOT)}}]
        # parameters are validated against the flow signature: unknown keys are refused
        with pytest.raises(PrefectHTTPStatusError, match="bogus"):
            client.create_flow_run_from_deployment(smoke.id, parameters={"config": {"bogus": 1}})


def trigger_smoke_run(runs_dir: Path):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        smoke = client.read_deployment_by_name("active-distillation/smoke")
        return client.create_flow_run_from_deployment(
            smoke.id, parameters={"config": smoke_config(runs_dir)}).id


def finished(run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state if state is not None and state.is_final() else None


def scheduled_runs(deployment: str) -> list:
    """Flow runs the server's scheduler made for a deployment (its cron schedule works)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=[deployment])))
    return [r for r in runs if r.state is not None and r.state.is_scheduled()]


def deployment_exists(name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name) is not None
        except ObjectNotFound:
            return False


def _round_runs(client, run_id) -> dict[str, object]:
    """{flow run name: flow run} of the distill-round subflows of run_id."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
    return {f.name: f for f in subflows}


def check_round_artifacts(run_id, cfg: dict) -> None:
    """Per round: selected / revisions tables with one row per selected question, a metrics
    markdown; per run: the accuracy curve with one row per round."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    sel = cfg["selection"]
    with get_client(sync_client=True) as client:
        rounds = _round_runs(client, run_id)
        assert set(rounds) == {"smoke-round-000", "smoke-round-001"}
        arts = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="smoke-")))}
    for r, n in ((0, sel["seed_size"]), (1, sel["per_round"])):
        for kind in ("selected", "revisions"):
            art = arts[f"smoke-round-{r:03d}-{kind}"]
            rows = json.loads(art.data)
            assert art.type == "table" and len(rows) == n, (kind, r, rows)
            assert art.flow_run_id == rounds[f"smoke-round-{r:03d}"].id
        assert {row["status"] for row in json.loads(arts[f"smoke-round-{r:03d}-revisions"].data)} == {"ok"}
        metrics = arts[f"smoke-round-{r:03d}-metrics"]
        assert metrics.type == "markdown" and "| teacher_tokens |" in metrics.data
    curve = arts["smoke-accuracy-curve"]
    assert curve.flow_run_id == run_id
    assert [row["round"] for row in json.loads(curve.data)] == [0, 1]


def check_retried_teacher_batch(run_id, run_dir: Path) -> None:
    """Some teacher batch failed (injected HTTP 500), went AwaitingRetry and then completed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    with get_client(sync_client=True) as client:
        round_ids = [f.id for f in _round_runs(client, run_id).values()]
        batches = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=round_ids)),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="annotate_batch_task")))
        history = {t.name: (t.run_count, [s.name for s in client.read_task_run_states(t.id)])
                   for t in batches}
    print(f"teacher batch task runs (run_count, states): {history}")
    # seed round: 8 questions / batch_size 4; round 1: 4 questions -> 3 batch task runs
    assert len(batches) == 3 and all(t.state.is_completed() for t in batches)
    retried = {name: h for name, h in history.items() if h[0] > 1}
    assert retried, f"no teacher batch was retried; change FAULTS['seed']: {history}"
    for run_count, states in retried.values():
        assert states[-1] == "Completed" and states.count("AwaitingRetry") == run_count - 1
        assert states.count("Retrying") == run_count - 1
    log = [json.loads(line) for line in (run_dir / "oracle_requests.jsonl").read_text().splitlines()]
    assert any(row["status"] == 500 for row in log)


def check_limits_released(worker_log: Path) -> None:
    """The run held slots of the existing limits (no 'do not exist' warning) and freed them."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for name in ("elad-teacher-api", "elad-gpu"):
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
    assert "do not exist - skipping acquisition" not in worker_log.read_text(errors="replace")
