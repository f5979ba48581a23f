"""The options of `elad run`, `elad evokd` and `elad plan` (and `elad teacher-server`'s fault
options) are generated from the config fields they set (flows/cli_options.py): each one names a
field, takes its choices from the field (or the selector registry), lands on that field, and a
shared option is declared once."""

from __future__ import annotations

import ast
import re
from functools import reduce
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
from typer.testing import CliRunner

import flows.cli_options as cli_options
from elad_core.elad.config import RunConfig
from elad_core.elad.selectors import SELECTORS
from elad_core.errors import ConfigError
from elad_core.evokd.config import EvoKDConfig
from flows.cli import app
from elad_core.teacher.config import OracleFaultConfig
from flows.cli_options import EVOKD, FAULTS, PLAN, RUN

runner = CliRunner()
COMMANDS = [("run", RunConfig, RUN), ("evokd", EvoKDConfig, EVOKD), ("plan", RunConfig, PLAN)]


def _field(model, path):
    """The pydantic field at a dotted path, walked here (not with the CLI's helper)."""
    *sections, name = path.split(".")
    for section in sections:
        assert section in model.model_fields, (model.__name__, path)
        model = model.model_fields[section].annotation
    assert name in model.model_fields, (model.__name__, path)
    return model.model_fields[name]


def _literal_values(field) -> list:
    ann = field.annotation
    lits = [ann] if get_origin(ann) is Literal else [
        a for a in get_args(ann) if get_origin(a) is Literal]
    return [v for lit in lits for v in get_args(lit)]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help_options(command: str) -> dict[str, str | None]:
    """{--flag: its metavar as listed by `elad <command> --help`}."""
    res = runner.invoke(app, [command, "--help"], terminal_width=250)
    assert res.exit_code == 0, res.output
    return {m[1]: m[2] for m in re.finditer(r"^  (?:-c, )?(--[a-z-]+)(?: <([^>]*)>)?",
                                            res.output, re.M)}


@pytest.mark.parametrize(("command", "model", "table"), COMMANDS)
def test_every_option_sets_a_config_field(command, model, table):
    """Each generated option is a table entry naming an existing field, with its help; the
    command lists exactly -c/--config, these options and --help."""
    listed = _help_options(command)
    assert list(listed) == ["--config", *(_flag(flag) for flag, _ in table), "--help"]
    flags = [flag for flag, _ in table]
    assert len(flags) == len(set(flags)), "a flag twice in one command"
    for flag, path in table:
        field = _field(model, path)
        assert field.description, f"{model.__name__}.{path}: no description (the option's help)"


@pytest.mark.parametrize(("command", "model", "table"), COMMANDS)
def test_closed_sets_are_the_fields_choices(command, model, table):
    """A Literal field's option offers exactly its values, the selector exactly the registry;
    every other option is open."""
    listed = _help_options(command)
    for flag, path in table:
        values = list(SELECTORS) if path == "selection.selector" else _literal_values(
            _field(model, path))
        metavar = listed[_flag(flag)]
        if values:
            assert metavar == "|".join(values), (flag, metavar)
        else:
            assert metavar in ("str", "int", "float", "path"), (flag, metavar)


def test_a_bad_choice_fails_at_parse_time_with_the_allowed_values(tmp_path):
    for command, model, table in COMMANDS:
        for flag, path in table:
            values = _literal_values(_field(model, path)) or (
                list(SELECTORS) if path == "selection.selector" else [])
            if not values:
                continue
            res = runner.invoke(app, [command, _flag(flag), "bogus", "--runs-dir", str(tmp_path)])
            assert res.exit_code == 2, (command, flag, res.output)
            line, = [x for x in res.output.splitlines() if x.strip()]
            assert line.startswith(
                f"error: Invalid value for '{_flag(flag)}': 'bogus' is not one of"), line
            assert all(repr(v) in line for v in values), (flag, line)
    assert not any(tmp_path.iterdir())


def test_an_option_of_several_commands_is_declared_once():
    """Each flag is written in one (flag, path) entry of flows/cli_options.py, and the commands
    that share it use that entry."""
    tree = ast.parse(Path(cli_options.__file__).read_text(encoding="utf-8"))
    declared = [node.elts[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Tuple) and len(node.elts) == 2
                and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                        for e in node.elts)]
    assert sorted(declared) == sorted(set(declared)), "an option declared twice"
    assert set(declared) == {flag for _, _, table in COMMANDS for flag, _ in [*table, *FAULTS]}
    run, evokd, plan = (dict(table) for _, _, table in COMMANDS)
    shared = (run.keys() & evokd.keys()) | (run.keys() & plan.keys())
    assert {"run_name", "runs_dir", "teacher", "teacher_api_base", "api_key_env", "reply_cache",
            "max_teacher_tokens", "max_cost_usd", "seed"} <= shared
    for flag in shared:  # same entry, same path (resolved in each command's own config)
        entries = [e for _, _, table in COMMANDS for e in table if e[0] == flag]
        assert all(e is entries[0] for e in entries), flag


def _value(flag: str, metavar: str, tmp_path: Path):
    """A valid value unlike the default for an option: the last choice, or a number/string."""
    if "|" in metavar:
        return metavar.split("|")[-1]
    return {"int": 7, "float": 2.5, "path": tmp_path / "runs"}.get(metavar) or {
        "run_name": "cli-options", "api_key_env": "SOME_KEY"}.get(flag, f"{flag}-value")


@pytest.mark.parametrize(("command", "model", "table"), COMMANDS)
def test_every_option_lands_on_its_field(command, model, table, tmp_path, monkeypatch):
    """Given on the command line, each option is the built config's value at its path."""
    import elad_core.evokd.config
    import flows.cli

    seen = {}
    load = {"evokd": elad_core.evokd.config.load_evokd_config}.get(command, flows.cli.load_config)

    def stop(path, overrides):
        seen["cfg"] = load(path, overrides)
        raise ConfigError("stopped after the config")

    monkeypatch.setattr(elad_core.evokd.config, "load_evokd_config", stop)
    monkeypatch.setattr(flows.cli, "load_config", stop)
    listed = _help_options(command)
    given = {flag: _value(flag, listed[_flag(flag)], tmp_path) for flag, _ in table}
    args = [a for flag, v in given.items() for a in (_flag(flag), str(v))]
    res = runner.invoke(app, [command, *args])
    assert res.exit_code == 2 and "stopped after the config" in res.output, res.output
    for flag, path in table:
        assert reduce(getattr, path.split("."), seen["cfg"]) == given[flag], (flag, path)


def test_teacher_server_fault_options_land_on_its_faults(monkeypatch):
    """`elad teacher-server`'s fault options are OracleFaultConfig's fields (help from their
    descriptions), listed between --port and --request-log; given ones reach the served
    FaultConfig, the others keep its defaults."""
    import elad_core.teacher.oracle.server as server

    listed = _help_options("teacher-server")
    assert list(listed) == ["--dataset", "--splits", "--host", "--port",
                            *(_flag(flag) for flag, _ in FAULTS), "--request-log",
                            "--api-key-env", "--help"]
    for flag, path in FAULTS:
        assert _field(OracleFaultConfig, path).description, path
        assert listed[_flag(flag)] == ("int" if path == "seed" else "float"), flag
    served = []
    monkeypatch.setattr(server, "serve_forever", lambda *args, **kw: served.append(args[3]))
    given = {flag: 0.1 if flag.endswith("_rate") else 7 for flag, _ in FAULTS}
    args = [a for flag, v in given.items() for a in (_flag(flag), str(v))]
    res = runner.invoke(app, ["teacher-server", "--splits", "test", *args])
    assert res.exit_code == 0, res.output
    for flag, path in FAULTS:
        assert getattr(served[0], path) == given[flag], (flag, path)
    res = runner.invoke(app, ["teacher-server", "--splits", "test", "--hang-s", "2"])
    assert res.exit_code == 0, res.output
    assert served[1] == server.FaultConfig(hang_s=2.0)
