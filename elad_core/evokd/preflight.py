"""EvoKD pre-flight: everything checkable before a run writes anything (as elad_core.elad.preflight).

Both splits are loaded and the seeds / eval subset / reserve drawn exactly as the data task
will (a bad row is a DataError naming file:line: field), the teacher's key variable and
dollar prices are checked, and `student.init_weights` must exist.
"""

from __future__ import annotations

from pathlib import Path

from elad_core.teacher.preflight import check_teacher
from elad_core.errors import ConfigError, DataError
from elad_core.evokd.config import EvoKDConfig
from elad_core.evokd.datasets import split_files, split_path
from elad_core.evokd.splits import prepare_task
from elad_core.files import hash_file


def evokd_preflight(config: EvoKDConfig) -> dict[str, str]:
    """Check a run can start; returns the content hashes of the split files (the data
    task's cache key; e-SNLI: its s1, s2, labels files' hashes joined by "+"). Raises
    DataError or ConfigError with a one-line message."""
    check_teacher(config)  # duck-typed: .teacher, .max_cost_usd, .max_round_cost_usd
    dc = config.data
    init = config.student.init_weights
    if init and not Path(init).is_dir():
        raise ConfigError(f"option 'student.init_weights': {init} is not a folder")
    prepared = prepare_task(dc.task, dc.dataset, dc.train_split, dc.test_split, dc.fields,
                            dc.labels, dc.k_shot, dc.eval_size, dc.reserve_size, config.seed)
    if not prepared.reserve and config.evokd.method != "kshot":
        raise DataError(f"{split_path(dc.task, dc.dataset, dc.train_split)}: no text is left for "
                        "the reserve pool after the k-shot seeds")
    return {split: "+".join(hash_file(f) for f in split_files(dc.task, dc.dataset, name))
            for split, name in (("train", dc.train_split), ("test", dc.test_split))}
