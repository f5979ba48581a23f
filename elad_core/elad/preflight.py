"""Pre-flight: check that a run can start before anything is written (docs/design.md §3).

A bad input file, an invalid option or a missing API key must end with one clear line and
leave the run directory untouched, so everything a run reads is checked first: every row
of the pool and eval sources (each loaded exactly as the data task will load it, so a bad
row is a DataError naming file, line and field), and the teacher's key variable. Hub
datasets are left to the data task (checking them would mean downloading them twice).
"""

from __future__ import annotations

from typing import NamedTuple

from elad_core.elad.config import DataConfig, RunConfig
from elad_core.teacher.preflight import check_teacher


class Source(NamedTuple):
    """Where one of the run's splits comes from."""

    name: str  # "pool" | "eval"
    format: str
    dataset: str
    split: str
    size: int | None


def sources(dc: DataConfig) -> list[Source]:
    """The pool and eval sources of a data config (eval may be another dataset / format)."""
    return [Source("pool", dc.format, dc.dataset, dc.pool_split, dc.pool_size),
            Source("eval", dc.eval_format or dc.format, dc.eval_dataset or dc.dataset,
                   dc.eval_split, dc.eval_size)]


def _is_local(src: Source) -> bool:
    from elad_core.elad.gsm8k import resolve_split

    return src.format != "gsm8k" or resolve_split(src.dataset, src.split) is not None


def check_data(dc: DataConfig, notes: list[str] | None = None) -> dict[str, int]:
    """Load every local source as the data task will; {name: rows} of those checked.

    notes: if given, gets one line per split whose repeated questions were merged
    (elad_core.elad.duplicates), for the console.
    Raises DataError (file:line: field ...) at the first bad row, or for a missing file.
    """
    from elad_core.elad.loaders import load_split_report

    rows = {}
    for src in sources(dc):
        if _is_local(src):
            examples, report = load_split_report(src.format, src.dataset, src.split,
                                                 dc.answer_family, dc.fields, dc.hub_config,
                                                 dc.on_duplicate)
            rows[src.name] = len(examples)
            line = report.describe(f"{src.name} ({src.dataset} {src.split})", dc.on_duplicate)
            if line and notes is not None:
                notes.append(line)
    return rows


def preflight(config: RunConfig, notes: list[str] | None = None) -> dict[str, int]:
    """Everything checkable before a run writes anything; returns {source: rows checked}.

    notes: if given, gets the console lines worth showing (merged repeated questions).
    Raises DataError or ConfigError with a one-line message.
    """
    check_teacher(config)
    return check_data(config.data, notes)


def pool_questions(config: RunConfig) -> list[str]:
    """The questions of the run's pool (its seeded subset), loaded as the data task does."""
    from elad_core.elad.gsm8k import subset
    from elad_core.elad.loaders import load_split

    dc = config.data
    pool = sources(dc)[0]
    examples = load_split(pool.format, pool.dataset, pool.split, dc.answer_family, dc.fields,
                          dc.hub_config, dc.on_duplicate)
    return [e.question for e in subset(examples, pool.size, config.seed)]
