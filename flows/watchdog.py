"""No orphans: a watchdog process that ends a command's descendants when the command dies.

`elad run` / `elad evokd` start child processes that outlive a SIGKILLed parent: Prefect's
ephemeral API server (uvicorn), the oracle teacher server, teacher fan-out processes, Dask
nannies and workers. A killed process runs no `atexit` hook and POSIX does not pass SIGKILL
on to children, so those would be re-parented to init and keep running (and holding ports).

`start_watchdog()` starts one small process outside the command's process group (its own
session, so Ctrl-C and group signals do not reach it). It polls the command's process tree
every `poll_s` seconds, remembering each descendant by (pid, create time) so a recycled pid is
never touched, and once the command has exited, for any reason, it sends SIGTERM to every
remembered descendant still alive and to their own descendants, then SIGKILL to those left
after `grace_s`. Then it exits. docs/design.md §3 (orchestration) describes the process tree.

Run as `python -m flows.watchdog PID CREATE_TIME POLL_S GRACE_S`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

_STARTED: dict[int, subprocess.Popen] = {}  # pid of the watched process -> its watchdog


def start_watchdog(poll_s: float = 0.2, grace_s: float = 3.0) -> subprocess.Popen:
    """Start (once per process) the watchdog of this process's descendants; returns it.

    Raises nothing beyond what `subprocess.Popen` raises; the watchdog exits by itself
    once this process is gone (at most `poll_s` + `grace_s` seconds later)."""
    me = os.getpid()
    if me in _STARTED and _STARTED[me].poll() is None:
        return _STARTED[me]
    created = psutil.Process(me).create_time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.watchdog", str(me), repr(created), str(poll_s), str(grace_s)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    _STARTED[me] = proc
    return proc


def _alive(proc: psutil.Process, created: float) -> bool:
    """Whether `proc` is still the process first seen with that create time (not a zombie)."""
    try:
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.Error:
        return []


def watch(pid: int, created: float, poll_s: float, grace_s: float) -> int:
    """Poll `pid`'s descendants until it exits, then end the ones left. Returns how many."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    seen: dict[int, tuple[psutil.Process, float]] = {}
    me = os.getpid()  # the watchdog is a child of the watched process too
    while _alive(parent, created):
        for child in _tree(parent):
            if child.pid == me:
                continue
            try:
                seen.setdefault(child.pid, (child, child.create_time()))
            except psutil.Error:
                pass
        time.sleep(poll_s)
    left = {p.pid: p for p, t in seen.values() if _alive(p, t)}
    for p in list(left.values()):  # children they started after the last poll
        for c in _tree(p):
            left.setdefault(c.pid, c)
    left.pop(me, None)
    for p in left.values():
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(left.values()), timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(left)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the command's
    pid_s, created_s, poll_s, grace_s = sys.argv[1:5]
    sys.exit(0 if watch(int(pid_s), float(created_s), float(poll_s), float(grace_s)) >= 0 else 1)
