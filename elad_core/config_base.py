"""What every config of the product shares: strict pydantic models (unknown keys are
rejected) and loading from YAML plus dotted-key overrides with errors naming the file and
the option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from elad_core.errors import ConfigError


class StrictModel(BaseModel):
    """A config section: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# a run's folder name under runs_dir; each method's config gives its own default
RunName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$",
                               description="Folder under runs_dir for this run.")]


class RunBase(StrictModel):
    """The fields every method's run config opens with (ELAD's RunConfig, EvoKDConfig), in
    this order: its folder (runs_dir/run_name), seed, rounds and teacher budgets. A method's
    config declares run_name and rounds again with its own default and help (a field declared
    again keeps its place here)."""

    run_name: RunName
    runs_dir: Path = Field(Path("runs"), description="Where run folders go.")
    seed: int = Field(0, description="Random seed.")
    rounds: int = Field(ge=1)
    # budgets (elad_core.budget.Budget.from_config): the run stops at a round boundary before
    # the next round's estimated teacher tokens or dollars would pass one
    max_teacher_tokens: int | None = Field(None, ge=1,
                                           description="Teacher-token budget of the run.")
    max_cost_usd: float | None = Field(None, gt=0, description="Dollar budget of the run.")
    max_round_teacher_tokens: int | None = Field(
        None, ge=1, description="Teacher-token budget of each round.")
    max_round_cost_usd: float | None = Field(None, gt=0,
                                             description="Dollar budget of each round.")

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_name


def _format_validation(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(config)"
        parts.append(f"{source}: option '{loc}': {e['msg']}")
    return "; ".join(parts)


_M = TypeVar("_M", bound=BaseModel)


def load_model(model: type[_M], path: Path | None = None,
               overrides: dict[str, Any] | None = None) -> _M:
    """A pydantic config `model` from an optional YAML file plus dotted-key overrides (None
    values ignored); ConfigError naming the file and the option on any invalid or unknown key."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: a folder, not a config file") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of options")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None
