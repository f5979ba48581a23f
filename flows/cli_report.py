"""What `elad run`, `elad evokd` and `elad plan` print when they end: one table row per round
on stdout, the run's folder and anything that stopped it early on stderr."""

from __future__ import annotations

from pathlib import Path

from elad_core.elad.round_record import RunSummary
from elad_core.evokd.round_record import EvoKDSummary

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True)


def _num(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_run_summary(summary: RunSummary, run_dir: Path, wall_s: float) -> None:
    """`elad run`'s rounds; exit 1 when the teacher's replies were unusable."""
    table = Table(title=f"run {summary.run_name}  ({summary.stopped})")
    for col in ("round", "selector", "annotator", "selected", "teacher tokens", "cost $",
                "accuracy", "parse rate", "train loss", "eval loss"):
        table.add_column(col, justify="right")
    for r in summary.rounds:
        table.add_row(str(r["round"]), r["selector"], r["annotator"], str(r["selected"]),
                      str(r["teacher_tokens"]), _num(r["cost_usd"], 4), _num(r["accuracy"]),
                      _num(r["parse_rate"]), _num(r["train_loss"]), _num(r["eval_loss"]))
    out = Console(width=max(Console().width, 110))
    out.print(table)
    sent = summary.invocation.teacher_requests_sent
    out.print(f"teacher requests sent by this invocation: {sent}; "
              f"wall {wall_s:.1f} s; results in {run_dir}/ (summary.json, round_NNN/)")
    if "teacher replies unusable" in summary.stopped:
        # one line: the cause and a raw reply; what was paid for is kept (cached, journaled)
        err.print(f"[red]{escape(summary.stopped)}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    if "budget" in summary.stopped:
        err.print(f"[yellow]{summary.stopped}[/yellow]", soft_wrap=True)


def print_plan(cfg, history: list, rows: list) -> None:
    """`elad plan`'s estimate of each remaining round, and where a budget would stop it."""
    table = Table(title=f"plan for run {cfg.run_name}: {len(history)} round(s) done, "
                        f"teacher {cfg.teacher.model}")
    for col in ("round", "annotator", "questions", "est. tokens", "est. $", "basis", "budget"):
        table.add_column(col, justify="left" if col in ("basis", "budget") else "right")
    for est, why in rows:
        table.add_row(str(est.round_index), est.annotator, str(est.questions),
                      f"{est.usage.teacher_tokens:,.0f}", f"{est.usage.cost_usd:.4f}", est.basis,
                      "ok" if why is None else "[bold]stops here[/bold]")
    Console(width=max(Console().width, 120)).print(table)
    if not rows:
        err.print(f"all {cfg.rounds} rounds of {cfg.run_dir} are done: nothing left to spend")
    elif rows[-1][1] is not None:
        err.print(f"[yellow]the run would stop before round {rows[-1][0].round_index}: "
                  f"{rows[-1][1]}[/yellow]", soft_wrap=True)


def print_evokd_summary(summary: EvoKDSummary, run_dir: Path, wall_s: float) -> None:
    """`elad evokd`'s rounds."""
    table = Table(title=f"evokd run {summary.run_name}: {summary.method}, {summary.task} "
                        f"{summary.k_shot}-shot  ({summary.stopped})")
    for col in ("round", "new examples", "teacher tokens", "cumulative", "feedback acc",
                "f1", "accuracy", "train loss"):
        table.add_column(col, justify="right")
    for r in summary.rounds:
        table.add_row(str(r["round"]), str(r["new_examples"]), str(r["teacher_tokens"]),
                      str(r["cumulative_teacher_tokens"]), _num(r["feedback_accuracy"]),
                      _num(r["f1"]), _num(r["accuracy"]), _num(r["train_loss"]))
    Console(width=max(Console().width, 110)).print(table)
    err.print(f"teacher requests sent: {summary.invocation.teacher_requests_sent}; wall "
              f"{wall_s:.1f} s; results in {run_dir}/", soft_wrap=True)
