"""The task that merges a step's shard files into the round's one file: sampling and probe
shards (flows/elad/select.py), teacher batches (flows/elad/round.py)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from elad_core.elad.state import MergedRef
from elad_core.files import hash_file, read_parquet, write_parquet
from elad_core.refs import FileRef
from tasks import CONTENT_CACHE


@task(cache_policy=CONTENT_CACHE)
def merge_shards(shards: list[FileRef], out_path: Path) -> MergedRef:
    """Concatenate shard parquet files (in order) into one file; returns its path, hash and
    number of rows."""
    rows = [row for s in shards for row in read_parquet(Path(s.path))]
    write_parquet(Path(out_path), rows)
    return MergedRef(path=str(out_path), sha=hash_file(out_path), rows=len(rows))
