"""Selection tasks: uncertainty scores and the top-B questions (docs/design.md §2 steps 2-3)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from elad_core.elad import rounds
from elad_core.elad.records import Probe, Sample, from_rows
from elad_core.elad.selectors import RandomSelector, SelectorInput, make_selector, select_top
from elad_core.files import hash_file, read_parquet, write_parquet
from tasks import CONTENT_CACHE
from tasks.elad.data import read_examples


@task(cache_policy=CONTENT_CACHE)
def merge_shards(shards: list[dict], out_path: Path) -> dict:
    """Concatenate shard parquet files (in order) into one file; returns path and hash."""
    rows = [row for s in shards for row in read_parquet(Path(s["path"]))]
    write_parquet(Path(out_path), rows)
    return {"path": str(out_path), "sha": hash_file(out_path), "rows": len(rows)}


@task(cache_policy=CONTENT_CACHE)
def select_seed(pool: str, pool_sha: str, budget: int, seed: int, out_path: Path) -> list[str]:
    """Round 0: B0 random pool questions (the untrained student's samples carry no signal)."""
    ids = [e.id for e in read_examples(pool)]
    scores = RandomSelector().score(SelectorInput([[None]] * len(ids), seed=seed))
    selected = select_top(ids, scores, set(), budget)
    write_parquet(Path(out_path), [{"question_id": q, "rank": i} for i, q in enumerate(selected)])
    return selected


@task(cache_policy=CONTENT_CACHE)
def score_and_select(selector: str, lam: float, samples: dict, probes: dict | None,
                     annotated: list[str], budget: int, seed: int, round_dir: Path) -> list[str]:
    """Score every sampled question, keep the top-B not yet annotated.

    Writes round_dir/scores.parquet (question_id, score, answers) and selected.parquet.
    """
    sample_rows = from_rows(Sample, read_parquet(Path(samples["path"])))
    probe_rows = from_rows(Probe, read_parquet(Path(probes["path"]))) if probes else None
    ids = list(rounds.group_samples(sample_rows))
    inputs = rounds.selector_input(ids, sample_rows, probe_rows, seed)
    scores = make_selector(selector, lam).score(inputs)
    selected = select_top(ids, scores, set(annotated), budget)
    round_dir = Path(round_dir)
    write_parquet(round_dir / "scores.parquet", [
        {"question_id": q, "score": float(s), "answers": [str(a) for a in ans]}
        for q, s, ans in zip(ids, scores, inputs.answers, strict=True)
    ])
    position = {q: i for i, q in enumerate(ids)}
    write_parquet(round_dir / "selected.parquet", [
        {"question_id": q, "rank": r, "score": float(scores[position[q]])} for r, q in enumerate(selected)
    ])
    return selected
