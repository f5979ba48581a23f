"""The `elad` command line (typer): `elad run`, `elad evokd`, `elad plan`, `elad teacher-server`,
`elad arithmetic-task`, `elad deploy`, `elad serve`.

`elad run` builds a RunConfig from an optional YAML file plus flags (flags win), runs the
`active_distillation` flow and prints one row per round. Errors in input or config end
with one line on stderr and exit code 2; nothing else is printed as a traceback
(flows/cli_errors.py).

The options of `run`, `evokd` and `plan`, and the fault options of `teacher-server`, are
generated from the config fields they set (flows/cli_options.py): type, default, help and the
choices of a closed set (a Literal field, the selector registry) come from the config, so
`--help` lists them and an unknown value fails at parse time naming the allowed ones.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

import flows  # noqa: F401  (sets the offline environment defaults first)
from elad_core.elad.config import RunConfig, load_config
from elad_core.elad.gsm8k import EMBEDDED
from elad_core.errors import EladError
from elad_core.evokd.config import EvoKDConfig
from elad_core.teacher.config import OracleFaultConfig
from flows.cli_errors import OneLineErrors, fail, quiet_expected_errors
from flows.cli_options import EVOKD, FAULTS, PLAN, RUN, config_option, with_options
from flows.cli_report import print_evokd_summary, print_plan, print_run_summary
from flows.watchdog import start_watchdog

_EMBEDDED = "/".join(f"'{name}'" for name in EMBEDDED)

# plain click help (rich_markup_mode=None): an option's choices stay on one line, where rich's
# table wraps a long <a|b|c> list mid-name
app = typer.Typer(add_completion=False, no_args_is_help=True, cls=OneLineErrors,
                  rich_markup_mode=None,
                  help="Active distillation of an LLM teacher into a small student (ELAD).")
err = Console(stderr=True)


@app.command()
@with_options(RunConfig, RUN)
def run(config: Optional[Path] = config_option("run"), *, overrides: dict[str, Any]) -> None:
    """Run active distillation (defaults: GSM8K subset, embedded student, oracle teacher)."""
    cfg = None
    try:
        cfg = load_config(config, overrides)
        from elad_core.elad.preflight import preflight

        notes: list[str] = []
        preflight(cfg, notes)  # bad data, options or key: one line, exit 2, nothing written
        for line in notes:  # e.g. repeated questions merged
            typer.echo(line)
        start_watchdog()  # no process of this run outlives it, even after SIGKILL
        from flows.elad.loop import active_distillation

        # the pre-flight above ran before anything was written: the flow skips its copy
        summary, wall_s = _run_flow(active_distillation, cfg, checked=True)
    except EladError as exc:
        fail(exc, cfg and cfg.teacher)
    print_run_summary(summary, cfg.run_dir, wall_s)


def _run_flow(flow: Callable[..., Any], cfg: Any, **kwargs: Any) -> tuple[Any, float]:
    """`flow(cfg, **kwargs)`, a method's flow imported after start_watchdog, run from the CLI:
    (its result, wall seconds); the exception it ended with is raised."""
    quiet_expected_errors()  # after Prefect set its logging up (on import)

    t0 = time.perf_counter()
    result = flow(cfg, return_state=True, **kwargs).result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result, time.perf_counter() - t0


@app.command()
@with_options(RunConfig, PLAN)
def plan(config: Optional[Path] = config_option("run"), *, overrides: dict[str, Any]) -> None:
    """Estimate each remaining round's teacher tokens and cost; spends and writes nothing."""
    try:
        from elad_core.elad.cost import estimate_rounds, estimator_for
        from elad_core.budget import read_history
        from elad_core.elad.preflight import pool_questions

        cfg = load_config(config, overrides)
        questions = pool_questions(cfg)
        history = read_history(cfg.run_dir)
        rows = estimate_rounds(cfg, estimator_for(cfg.teacher, questions), len(questions), history)
    except EladError as exc:
        fail(exc)
    print_plan(cfg, history, rows)


@app.command("teacher-server")
@with_options(OracleFaultConfig, FAULTS)
def teacher_server(
    dataset: str = typer.Option(
        "gsm8k", help=f"Dataset the oracle answers from (GSM8K format): {_EMBEDDED} (embedded), "
                      "a folder of <split>.jsonl or a hub id."),
    splits: str = typer.Option("train,test", help="Comma-separated splits to index."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000, help="Port."),
    *,
    overrides: dict[str, Any],  # the fault options (FAULTS): {OracleFaultConfig field: value}
    request_log: Optional[Path] = typer.Option(None, help="Append one JSON line per request."),
    api_key_env: Optional[str] = typer.Option(None, help="Require the key in this env var (401)."),
) -> None:
    """Serve the oracle teacher (an offline test double answering from gold rationales)."""
    try:
        from elad_core.elad.gsm8k import load_examples
        from elad_core.elad.oracle_judge import OracleJudge
        from elad_core.teacher.oracle.server import FaultConfig, serve_forever

        examples = [e for s in splits.split(",") for e in load_examples(dataset, s.strip())]
        faults = FaultConfig(**{k: v for k, v in overrides.items() if v is not None})
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not key:
            raise EladError(f"--api-key-env: environment variable {api_key_env} is not set")
    except ValueError as exc:
        fail(EladError(f"fault options: {exc}"))
    except EladError as exc:
        fail(exc)
    err.print(f"oracle teacher on http://{host}:{port}/v1 ({len(examples)} questions; test double)")
    serve_forever(OracleJudge(examples), host, port, faults, request_log, api_key=key)


@app.command("arithmetic-task")
def arithmetic_task(
    out: Path = typer.Argument(..., help="Folder to write train.jsonl and test.jsonl into."),
    pool: int = typer.Option(4000, help="Questions of the 'train' split (the pool)."),
    test: int = typer.Option(300, help="Questions of the 'test' split."),
    seed: int = typer.Option(0, help="Generator seed."),
) -> None:
    """Write the seeded arithmetic word-problem task (GSM8K format, docs/design.md §5).

    A CPU-learnable measuring instrument; run on it with `elad run --dataset OUT`.
    """
    from elad_core.synthetic.arithmetic import write_dataset

    if pool < 1 or test < 1:
        fail(EladError("--pool and --test must be at least 1"))
    paths = write_dataset(out, {"train": pool, "test": test}, seed=seed)
    for split, path in paths.items():
        err.print(f"{split}: {path}")


@app.command()
def deploy(
    prefect_file: Optional[Path] = typer.Option(None, help="Default: deployments/prefect.yaml."),
    name: Optional[list[str]] = typer.Option(None, help="Deploy only this one (repeatable)."),
    teacher_slots: int = typer.Option(4, help="Slots of a teacher limit created here."),
    gpu_slots: int = typer.Option(1, help="Slots of a GPU limit created here."),
) -> None:
    """Create the work pool and concurrency limits prefect.yaml names, then `prefect deploy --all`."""
    from flows.deploy import PREFECT_FILE, prefect_deploy, ready_server

    try:
        for line in ready_server(prefect_file or PREFECT_FILE, teacher_slots, gpu_slots):
            err.print(line)
        prefect_deploy(prefect_file or PREFECT_FILE, name)
    except EladError as exc:
        fail(exc)


@app.command()
def serve(
    config: Optional[Path] = config_option("run"),
    name: str = typer.Option("elad-serve", help="Deployment name."),
    cron: Optional[str] = typer.Option(None, help="Schedule, e.g. '0 3 * * *' (UTC)."),
    limit: int = typer.Option(1, help="Flow runs at once in this process."),
) -> None:
    """Serve active distillation from this process (no worker) until stopped."""
    from flows.deploy import serve as serve_flow

    try:
        serve_flow(load_config(config), name, cron, limit=limit)
    except EladError as exc:
        fail(exc)


@app.command()
@with_options(EvoKDConfig, EVOKD)
def evokd(config: Optional[Path] = config_option("EvoKD"), *,
          overrides: dict[str, Any]) -> None:
    """EvoKD: the teacher analyses the student's mistakes and writes hard + easy samples
    (defaults: e-SNLI 1-shot, MiniLM-L6 + LoRA, the oracle teacher, a simulation)."""
    cfg = None
    try:
        from elad_core.evokd.config import load_evokd_config
        from elad_core.evokd.preflight import evokd_preflight

        cfg = load_evokd_config(config, overrides)
        evokd_preflight(cfg)  # bad data, options or key: one line, exit 2, nothing written
        start_watchdog()  # no process of this run outlives it, even after SIGKILL
        from flows.evokd.loop import evokd_distillation

        summary, wall_s = _run_flow(evokd_distillation, cfg)
    except EladError as exc:
        fail(exc, cfg and cfg.teacher)
    print_evokd_summary(summary, cfg.run_dir, wall_s)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
