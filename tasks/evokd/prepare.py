"""EvoKD data tasks (docs/design.md §2.5): the seeds / eval / reserve split files and each
round's batch file. Cached on content, results under the run folder (`tasks.in_run`)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from elad_core.evokd import splits
from elad_core.evokd.state import BatchRef, EvoKDData, RowsRef
from elad_core.files import hash_file, read_parquet, write_parquet
from elad_core.refs import FileRef
from tasks import CONTENT_CACHE


def read_rows(ref: FileRef) -> list[dict]:
    """Rows of a parquet file a task returned."""
    return read_parquet(Path(ref.path))


@task(cache_policy=CONTENT_CACHE)
def prepare_evokd_data(data_cfg: dict, sources: dict, seed: int, run_dir: Path) -> EvoKDData:
    """Write data/{seeds,eval,reserve}.parquet; returns their paths + hashes, the label set
    and the kind. sources: content hashes of the split files (the cache key)."""
    p = splits.prepare_task(
        data_cfg["task"], data_cfg["dataset"], data_cfg["train_split"], data_cfg["test_split"],
        data_cfg["fields"], data_cfg["labels"], data_cfg["k_shot"], data_cfg["eval_size"],
        data_cfg["reserve_size"], seed)
    refs = {}
    for name, rows in (("seeds", p.seeds), ("eval", p.eval), ("reserve", p.reserve)):
        path = Path(run_dir) / "data" / f"{name}.parquet"
        write_parquet(path, [{"id": e.id, "text": e.text, "label": e.label, "source": e.source}
                             for e in rows])
        refs[name] = RowsRef(path=str(path), sha=hash_file(path), rows=len(rows))
    return EvoKDData(labels=p.labels, kind=p.kind, **refs)


@task(cache_policy=CONTENT_CACHE)
def write_batch(rows: list[dict], out_path: Path) -> BatchRef:
    """A round's batch rows -> batch.parquet; returns its path, hash and counts."""
    write_parquet(Path(out_path), rows)
    return BatchRef(path=str(out_path), sha=hash_file(out_path),
                    ok=sum(r["status"] == "ok" for r in rows), rows=len(rows))
