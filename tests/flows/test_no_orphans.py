"""No orphans (issue #13): a SIGKILLed command leaves no process behind (flows/watchdog.py).

A SIGKILLed process runs no exit hook and the kernel does not pass the signal on, so without
the watchdog Prefect's ephemeral API server (uvicorn) of an `elad run` stayed up, parented
to init, after every killed run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import ROOT as CHECKOUT
from conftest import tiny_config


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """The processes of `procs` still running (not zombies) after up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_watchdog_ends_children_and_grandchildren_of_a_killed_process(tmp_path):
    # parent: starts the watchdog, then a child that starts a grandchild in a new session
    # (as servers do), both sleeping; it prints the pids and waits to be killed
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import subprocess, sys, time
        from flows.watchdog import start_watchdog
        dog = start_watchdog(poll_s=0.1)
        child = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys, time; "
            "g = subprocess.Popen(['sleep', '300'], start_new_session=True); "
            "print(g.pid, flush=True); time.sleep(300)"], stdout=subprocess.PIPE, text=True)
        grandchild = int(child.stdout.readline())
        print(dog.pid, child.pid, grandchild, flush=True)
        time.sleep(300)
    """))
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env=env)
    dog, child, grandchild = (psutil.Process(int(x)) for x in parent.stdout.readline().split())
    time.sleep(0.5)  # a poll or two: the watchdog has seen the tree
    assert all(p.is_running() for p in (dog, child, grandchild))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    alive = _wait_gone([child, grandchild, dog], timeout_s=10)
    assert not alive, [p.cmdline() for p in alive]


def test_watchdog_leaves_an_unrelated_process_alone(tmp_path):
    # a process started by the watched one's *parent* (not its descendant) must survive
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        proc = subprocess.Popen([sys.executable, "-c",
                                 "from flows.watchdog import start_watchdog; import time; "
                                 "start_watchdog(poll_s=0.1); time.sleep(0.5)"],
                                env={**os.environ,
                                     "PYTHONPATH": str(CHECKOUT)})
        assert proc.wait(timeout=60) == 0
        time.sleep(1.0)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
def test_sigkilled_elad_run_leaves_no_process(tmp_path):
    cfg = tiny_config(tmp_path, run_name="orphans")
    cfg["train"]["steps"] = 40  # round 0 lasts long enough for the kill to land inside it
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home")}
    env.pop("PREFECT_API_URL", None)  # the run starts its own ephemeral Prefect server
    run = subprocess.Popen([str(Path(sys.executable).with_name("elad")), "run", "-c", str(path)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = psutil.Process(run.pid)
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 240
    server = False
    while time.monotonic() < deadline and run.poll() is None:
        for p in me.children(recursive=True):
            seen.setdefault(p.pid, p)
        try:
            server = any("prefect.server" in " ".join(p.cmdline()) for p in seen.values())
        except psutil.Error:
            pass
        if server and (tmp_path / "runs" / "orphans" / "round_000").exists():
            break
        time.sleep(0.2)
    assert run.poll() is None, "the run ended before it could be killed"
    assert server, "no ephemeral Prefect server seen among the run's processes"
    time.sleep(1.0)
    for p in me.children(recursive=True):
        seen.setdefault(p.pid, p)
    run.send_signal(signal.SIGKILL)
    run.wait()
    alive = _wait_gone(list(seen.values()), timeout_s=20)
    assert not alive, [p.cmdline() for p in alive]
