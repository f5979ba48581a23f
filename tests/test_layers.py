"""The layer contracts (pyproject.toml [tool.importlinter], run first by `make test`): they
pass on this tree, and a shared layer that imports a method breaks them, naming the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_tree_keeps_its_layer_contracts():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BROKEN" not in res.stdout and "0 broken" in res.stdout


def test_a_student_module_importing_a_method_breaks_the_contracts(tmp_path):
    for name in ("elad_core", "flows", "tasks"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    evaluation = tmp_path / "elad_core" / "student" / "evaluation.py"
    evaluation.write_text(evaluation.read_text() + "\nfrom elad_core.elad import prompts\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    assert "the shared layers import no method BROKEN" in res.stdout
    assert "elad_core.student.evaluation -> elad_core.elad.prompts" in res.stdout
