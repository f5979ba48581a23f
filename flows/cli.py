"""The `elad` command line (typer): `elad run`, `elad teacher-server`.

`elad run` builds a RunConfig from an optional YAML file plus flags (flags win), runs the
`active_distillation` flow and prints one row per round. Errors in input or config end
with one line on stderr and exit code 2; nothing else is printed as a traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (sets the offline environment defaults first)
from elad_core.config import load_config
from elad_core.errors import EladError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Active distillation of an LLM teacher into a small student (ELAD).")
err = Console(stderr=True)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    run_name: Optional[str] = typer.Option(None, help="Folder under runs_dir for this run."),
    runs_dir: Optional[Path] = typer.Option(None, help="Where run folders go (default: runs)."),
    dataset: Optional[str] = typer.Option(None, help="'gsm8k' (embedded), a folder, or a hub id."),
    pool_size: Optional[int] = typer.Option(None, help="Seeded subset of the pool."),
    eval_size: Optional[int] = typer.Option(None, help="Seeded subset of the eval split."),
    student: Optional[str] = typer.Option(None, help="'embedded', a hub id or a local path."),
    teacher: Optional[str] = typer.Option(None, help="'oracle' or a litellm model string."),
    teacher_api_base: Optional[str] = typer.Option(None, help="Teacher endpoint (OpenAI style)."),
    api_key_env: Optional[str] = typer.Option(None, help="Env var holding the teacher API key."),
    selector: Optional[str] = typer.Option(None, help="Selector name, e.g. egss or random."),
    annotator: Optional[str] = typer.Option(None, help="Annotator after round 0: clear or cot."),
    rounds: Optional[int] = typer.Option(None, help="Rounds including the seed round."),
    seed_size: Optional[int] = typer.Option(None, help="B0: questions annotated in round 0."),
    per_round: Optional[int] = typer.Option(None, help="B: questions selected per round."),
    train_steps: Optional[int] = typer.Option(None, help="Optimizer steps per round."),
    max_teacher_tokens: Optional[int] = typer.Option(None, help="Teacher-token budget."),
    max_cost_usd: Optional[float] = typer.Option(None, help="Dollar budget."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
) -> None:
    """Run active distillation (defaults: GSM8K subset, embedded student, oracle teacher)."""
    overrides = {
        "run_name": run_name, "runs_dir": runs_dir, "seed": seed, "rounds": rounds,
        "max_teacher_tokens": max_teacher_tokens, "max_cost_usd": max_cost_usd,
        "data.dataset": dataset, "data.pool_size": pool_size, "data.eval_size": eval_size,
        "student.model": student, "teacher.model": teacher, "teacher.api_base": teacher_api_base,
        "teacher.api_key_env": api_key_env, "teacher.annotator": annotator,
        "selection.selector": selector, "selection.seed_size": seed_size,
        "selection.per_round": per_round, "train.steps": train_steps,
    }
    try:
        cfg = load_config(config, overrides)
        from flows.active_distillation import active_distillation

        t0 = time.perf_counter()
        state = active_distillation(cfg, return_state=True)
        summary = state.result(raise_on_failure=False)
        if isinstance(summary, BaseException):
            raise summary
    except EladError as exc:
        _fail(exc)
    _print_summary(summary, cfg.run_dir, time.perf_counter() - t0)


def _print_summary(summary: dict, run_dir: Path, wall_s: float) -> None:
    table = Table(title=f"run {summary['run_name']}  ({summary['stopped']})")
    for col in ("round", "selector", "annotator", "selected", "teacher tokens", "cost $",
                "accuracy", "parse rate", "train loss", "eval loss"):
        table.add_column(col, justify="right")
    for r in summary["rounds"]:
        table.add_row(str(r["round"]), r["selector"], r["annotator"], str(r["selected"]),
                      str(r["teacher_tokens"]), f"{r['cost_usd']:.4f}", f"{r['accuracy']:.3f}",
                      f"{r['parse_rate']:.3f}", f"{r['train_loss']:.3f}",
                      "-" if r["eval_loss"] is None else f"{r['eval_loss']:.3f}")
    out = Console(width=max(Console().width, 110))
    out.print(table)
    out.print(f"teacher requests sent by this invocation: {summary['teacher_requests_sent']}; "
              f"wall {wall_s:.1f} s; results in {run_dir}/ (summary.json, round_NNN/)")


@app.command("teacher-server")
def teacher_server(
    dataset: str = typer.Option("gsm8k", help="Dataset the oracle answers from."),
    splits: str = typer.Option("train,test", help="Comma-separated splits to index."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000, help="Port."),
    latency_s: float = typer.Option(0.0, help="Injected latency per request (s)."),
    error_rate: float = typer.Option(0.0, help="Share of requests answered HTTP 500."),
    rate_limit_rate: float = typer.Option(0.0, help="Share answered 429 + Retry-After."),
    fault_seed: int = typer.Option(0, help="Seed of the injected faults."),
    request_log: Optional[Path] = typer.Option(None, help="Append one JSON line per request."),
) -> None:
    """Serve the oracle teacher (an offline test double answering from gold rationales)."""
    try:
        from elad_core.data import load_examples
        from elad_core.teacher_oracle import OracleJudge
        from elad_core.teacher_oracle_server import FaultConfig, serve_forever

        examples = [e for s in splits.split(",") for e in load_examples(dataset, s.strip())]
    except EladError as exc:
        _fail(exc)
    err.print(f"oracle teacher on http://{host}:{port}/v1 ({len(examples)} questions; test double)")
    faults = FaultConfig(latency_s=latency_s, error_rate=error_rate,
                         rate_limit_rate=rate_limit_rate, seed=fault_seed)
    serve_forever(OracleJudge(examples), host, port, faults, request_log)


def main() -> None:  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
