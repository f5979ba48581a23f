"""benchmarks/task_memory.py: peaks charged to the task whose 'Finished' line ends them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import task_memory  # noqa: E402

# a child that logs two task runs; the second holds ~200 MB for a while before it finishes
CHILD = """
import time
print("12:00:00 | INFO | Task run 'small-1a2' - Finished in state Completed()", flush=True)
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(0.6)
print("12:00:01 | INFO | Task run 'large-3b4' - Finished in state Completed()", flush=True)
"""


def test_each_peak_is_charged_to_the_task_that_finishes_it(capsys):
    rows, overall, status = task_memory.measure([sys.executable, "-c", CHILD], interval=0.05)
    assert status == 0 and [name for name, _ in rows] == ["small-1a2", "large-3b4"]
    small, large = rows[0][1], rows[1][1]
    assert large - small > 150 * 2**20  # the 200 MB block was counted in the second task
    assert overall >= large
    assert "large-3b4" in capsys.readouterr().out


def test_the_command_goes_after_a_double_dash():
    assert task_memory.main(["--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
