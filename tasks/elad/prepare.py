"""Data preparation task: load the pool and eval splits, write them as parquet (docs/design.md §2)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import task

from elad_core.elad.config import DataConfig
from elad_core.elad.gsm8k import subset
from elad_core.elad.state import DataRefs
from elad_core.elad.loaders import load_split_report
from elad_core.explanations.records import Example, from_rows, to_rows
from elad_core.files import hash_file, read_parquet, write_parquet
from tasks import CONTENT_CACHE


@task(cache_policy=CONTENT_CACHE)
def prepare_data(data_cfg: DataConfig, family: str, sources: dict, seed: int,
                 run_dir: Path) -> DataRefs:
    """Write run_dir/data/{pool,eval}.parquet; returns their paths and sha256 content hashes,
    and per split what merging repeated questions did (`duplicates`: {split: DuplicateReport}).

    sources: elad_core.elad.gsm8k.source_fingerprint of the splits (part of the cache key).
    """
    dc = data_cfg
    out: dict = {"duplicates": {}}
    for name, fmt, dataset, split, size in (
        ("pool", dc.format, dc.dataset, dc.pool_split, dc.pool_size),
        ("eval", dc.eval_format or dc.format, dc.eval_dataset or dc.dataset, dc.eval_split,
         dc.eval_size),
    ):
        examples, report = load_split_report(fmt, dataset, split, family, dc.fields,
                                             dc.hub_config, dc.on_duplicate)
        path = write_parquet(Path(run_dir) / "data" / f"{name}.parquet",
                             to_rows(subset(examples, size, seed)))
        out[name], out[f"{name}_sha"] = str(path), hash_file(path)
        out["duplicates"][name] = asdict(report)
    return DataRefs(**out)


def read_examples(path: str | Path) -> list[Example]:
    """Examples back from a parquet written by prepare_data."""
    return from_rows(Example, read_parquet(Path(path)))
