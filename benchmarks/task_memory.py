"""Peak resident memory of a run, per Prefect task: which step of a job needs the memory.

Runs a command (an `elad run` / `elad evokd` job), samples the resident memory (RSS) of its
whole process tree every `--interval` seconds, and reads the job's log as it comes: the peak
between two "Task run '<name>' - Finished" lines is charged to the task that just finished
(the round's steps run one after another). Prints one line per task and the run's overall
peak, in GiB; the command's own output is not shown. Exit status: the command's.

    .venv/bin/python benchmarks/task_memory.py -- .venv/bin/elad run -c examples/real-student.yaml

The figures in docs/real-models.md ("Memory") come from this script.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time

import psutil

FINISHED = re.compile(r"Task run '([\w.-]+)' - Finished")


def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants (0 once it has ended)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(command: list[str], interval: float = 0.1) -> tuple[list[tuple[str, int]], int, int]:
    """Run `command`; returns ([(task run name, peak bytes)], overall peak bytes, exit status)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, errors="replace")
    lock, peak, done = threading.Lock(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = tree_rss(proc.pid)
            with lock:
                peak[0] = max(peak[0], rss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows, overall = [], 0
    for line in proc.stdout:
        m = FINISHED.search(line)
        if m:
            with lock:
                task_peak, peak[0] = peak[0], tree_rss(proc.pid)
            overall = max(overall, task_peak)
            rows.append((m.group(1), task_peak))
            print(f"{m.group(1):44s} {task_peak / 2**30:7.2f} GiB", flush=True)
    status = proc.wait()
    done.set()
    sampler.join()
    return rows, max(overall, peak[0]), status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the job, after --")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command to measure after --")
    _, overall, status = measure(command, args.interval)
    print(f"overall peak {overall / 2**30:.2f} GiB; exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
