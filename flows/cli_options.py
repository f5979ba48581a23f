"""The options of `elad run`, `elad evokd`, `elad plan` and the fault options of
`elad teacher-server`, generated from the config fields they set (as TRL derives its argument
parsers from its dataclass configs).

Each command has a table of (flag, dotted config path); an option used by several commands
is one shared entry. An option's type, default and help come from the pydantic field at its
path, resolved in the command's own config model (its annotation, its default, its
`description`): the config is the one place they are written. A closed set is a choice, so
`--help` lists it as <a|b|c> and an unknown value fails at parse time naming the allowed
ones: a Literal field gives its values, a field named in REGISTRIES its registry's keys.

Every option defaults to None ("not given"): the command gets {path: value} overrides, and
load_config / load_evokd_config leave the YAML's or the field's value where it is None
(teacher-server: FaultConfig keeps its default).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from elad_core.elad.config import SelectionConfig
from elad_core.elad.selectors import SELECTORS

# (flag, config path): `flag` is the option's Python name, run_name -> --run-name
Entry = tuple[str, str]

# shared by `run` and `evokd` (and `plan`): same flag, same path in each command's config
RUN_DIR: list[Entry] = [("run_name", "run_name"), ("runs_dir", "runs_dir")]
DATASET: Entry = ("dataset", "data.dataset")
EVAL_SIZE: Entry = ("eval_size", "data.eval_size")
STUDENT: Entry = ("student", "student.model")
ROUNDS: Entry = ("rounds", "rounds")
TEACHER: list[Entry] = [("teacher", "teacher.model"), ("teacher_api_base", "teacher.api_base"),
                        ("api_key_env", "teacher.api_key_env"),
                        ("reply_cache", "teacher.reply_cache")]
BUDGET: list[Entry] = [("max_teacher_tokens", "max_teacher_tokens"),
                       ("max_cost_usd", "max_cost_usd")]
SEED: Entry = ("seed", "seed")

RUN: list[Entry] = [  # elad run: RunConfig
    *RUN_DIR, DATASET, ("format", "data.format"), ("pool_size", "data.pool_size"), EVAL_SIZE,
    STUDENT, *TEACHER, ("teacher_mode", "teacher.mode"), ("selector", "selection.selector"),
    ("annotator", "teacher.annotator"), ("seed_annotator", "teacher.seed_annotator"), ROUNDS,
    ("seed_size", "selection.seed_size"), ("per_round", "selection.per_round"),
    ("train_steps", "train.steps"), ("train_mode", "train.mode"), ("runner", "runner.kind"),
    *BUDGET, SEED]
EVOKD: list[Entry] = [  # elad evokd: EvoKDConfig
    *RUN_DIR, ("task", "data.task"), DATASET, ("k_shot", "data.k_shot"), EVAL_SIZE,
    ("method", "evokd.method"), ROUNDS, ("n_hard", "evokd.n_hard"), ("n_easy", "evokd.n_easy"),
    STUDENT, ("mode", "student.mode"), ("steps", "train.steps"), *TEACHER, *BUDGET, SEED]
PLAN: list[Entry] = [*RUN_DIR, *BUDGET]  # elad plan: RunConfig
FAULTS: list[Entry] = [  # elad teacher-server: OracleFaultConfig (the oracle's injected faults)
    ("latency_s", "latency_s"), ("error_rate", "error_rate"),
    ("rate_limit_rate", "rate_limit_rate"), ("retry_after_s", "retry_after_s"),
    ("timeout_rate", "timeout_rate"), ("hang_s", "hang_s"), ("drop_rate", "drop_rate"),
    ("malformed_rate", "malformed_rate"), ("unparsable_rate", "unparsable_rate"),
    ("fault_seed", "seed")]

# str fields whose values are a registry's names (the config validates them against it)
REGISTRIES: dict[tuple[type[BaseModel], str], Any] = {(SelectionConfig, "selector"): SELECTORS}
_PLAIN = (str, int, float, Path)  # field types taken as they are


def field_at(model: type[BaseModel], path: str) -> tuple[type[BaseModel], str, FieldInfo]:
    """The field at a dotted `path` of `model`: (the section model holding it, its name, it).
    KeyError for a path that is not a field."""
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return model, name, model.model_fields[name]


def choices(model: type[BaseModel], path: str) -> tuple[Any, ...]:
    """The closed set of the field at `path`: its registry's names, or the values of a
    Literal[...] (or Literal[...] | None) annotation; () for an open field."""
    owner, name, field = field_at(model, path)
    if (owner, name) in REGISTRIES:
        return tuple(REGISTRIES[owner, name])
    ann = field.annotation
    lits = [ann] if get_origin(ann) is Literal else [
        a for a in get_args(ann) if get_origin(a) is Literal]
    return tuple(v for lit in lits for v in get_args(lit))


def option_type(model: type[BaseModel], path: str) -> Any:
    """The command-line type of the field at `path`: Literal[its choices] for a closed set,
    else its annotation without None (str, int, float or Path)."""
    if values := choices(model, path):
        return Literal[values]
    ann = field_at(model, path)[2].annotation
    if get_origin(ann) in (Union, types.UnionType):  # X | None: X
        args = [a for a in get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else ann
    if ann not in _PLAIN:
        raise TypeError(f"{model.__name__}.{path}: no command-line type for {ann}")
    return ann


def option_help(model: type[BaseModel], path: str, defaults: BaseModel) -> str:
    """The field's description, and its default in `defaults` (the command's default config:
    a section's own defaults, e.g. EvoKD's teacher, included) where it has one."""
    default = reduce(getattr, path.split("."), defaults)
    text = field_at(model, path)[2].description or ""
    return text if default is None else f"{text} [default: {default}]"


def config_option(what: str) -> Any:
    """-c/--config: the YAML file the options are laid over."""
    return typer.Option(None, "--config", "-c", help=f"YAML {what} config.")


def options(model: type[BaseModel], table: list[Entry]) -> list[inspect.Parameter]:
    """One keyword parameter per table entry, its default a typer.Option (None: not given)."""
    defaults = model()
    return [inspect.Parameter(
        flag, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[option_type(model, path)],
        default=typer.Option(None, help=option_help(model, path, defaults)))
        for flag, path in table]


def with_options(model: type[BaseModel], table: list[Entry]) -> Callable:
    """Decorator: `body(..., overrides, ...)` becomes a typer command function whose options are
    the body's own parameters, with one option per table entry where `overrides` stands (a
    keyword-only parameter); `overrides` maps each entry's path to its value."""
    def decorate(body: Callable[..., None]) -> Callable:
        def command(**given: Any) -> None:
            overrides = {path: given.pop(flag) for flag, path in table}
            body(**given, overrides=overrides)

        own = inspect.signature(body, eval_str=True).parameters.values()
        params = [q for p in own for q in (options(model, table) if p.name == "overrides" else [p])]
        command.__signature__ = inspect.Signature(params)
        command.__name__, command.__doc__ = body.__name__, body.__doc__
        return command
    return decorate
