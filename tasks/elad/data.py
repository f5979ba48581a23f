"""Data preparation task: load the pool and eval splits, write them as parquet (docs/design.md §2)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import task

from elad_core.elad.data import subset
from elad_core.elad.loaders import load_split_report
from elad_core.explanations.records import Example, from_rows, to_rows
from elad_core.files import hash_file, read_parquet, write_parquet
from tasks import CONTENT_CACHE


@task(cache_policy=CONTENT_CACHE)
def prepare_data(data_cfg: dict, family: str, sources: dict, seed: int, run_dir: Path) -> dict:
    """Write run_dir/data/{pool,eval}.parquet; returns their paths and sha256 content hashes,
    and per split what merging repeated questions did ("duplicates": {split: DuplicateReport}).

    sources: elad_core.elad.data.source_fingerprint of the splits (part of the cache key).
    """
    out: dict = {"duplicates": {}}
    eval_fmt = data_cfg["eval_format"] or data_cfg["format"]
    eval_dataset = data_cfg["eval_dataset"] or data_cfg["dataset"]
    for name, fmt, dataset, split, size in (
        ("pool", data_cfg["format"], data_cfg["dataset"], data_cfg["pool_split"], data_cfg["pool_size"]),
        ("eval", eval_fmt, eval_dataset, data_cfg["eval_split"], data_cfg["eval_size"]),
    ):
        examples, report = load_split_report(fmt, dataset, split, family, data_cfg["fields"],
                                             data_cfg["hub_config"], data_cfg["on_duplicate"])
        path = write_parquet(Path(run_dir) / "data" / f"{name}.parquet",
                             to_rows(subset(examples, size, seed)))
        out[name], out[f"{name}_sha"] = str(path), hash_file(path)
        out["duplicates"][name] = asdict(report)
    return out


def read_examples(path: str | Path) -> list[Example]:
    """Examples back from a parquet written by prepare_data."""
    return from_rows(Example, read_parquet(Path(path)))
