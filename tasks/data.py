"""Data preparation task: load the pool and eval splits, write them as parquet (DESIGN §2)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from elad_core.data import load_examples, subset
from elad_core.files import hash_file, read_parquet, write_parquet
from elad_core.records import Example, from_rows, to_rows
from tasks import CONTENT_CACHE


@task(cache_policy=CONTENT_CACHE)
def prepare_data(data_cfg: dict, sources: dict, seed: int, run_dir: Path) -> dict:
    """Write run_dir/data/{pool,eval}.parquet; returns their paths and sha256 content hashes.

    sources: elad_core.data.source_fingerprint of the splits (part of the cache key).
    """
    out = {}
    for name, split, size in (
        ("pool", data_cfg["pool_split"], data_cfg["pool_size"]),
        ("eval", data_cfg["eval_split"], data_cfg["eval_size"]),
    ):
        examples = load_examples(data_cfg["dataset"], split, data_cfg["hub_config"], data_cfg["family"])
        path = write_parquet(Path(run_dir) / "data" / f"{name}.parquet", to_rows(subset(examples, size, seed)))
        out[name], out[f"{name}_sha"] = str(path), hash_file(path)
    return out


def read_examples(path: str | Path) -> list[Example]:
    """Examples back from a parquet written by prepare_data."""
    return from_rows(Example, read_parquet(Path(path)))
