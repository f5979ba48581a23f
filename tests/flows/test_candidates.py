"""selection.candidates (issue #16): a round samples only a seeded subset of the pool.

Contract of flows/elad/round.py step [1]: with `selection.candidates` = n, round r samples
K explanations for exactly n questions not yet annotated, the subset drawn with
derive_seed(run seed, "candidates", r) (the same for every selector and annotator of a seed),
and only those can be selected.
"""

from __future__ import annotations

import pytest
from conftest import tiny_config

from elad_core.elad.config import RunConfig
from elad_core.files import read_parquet
from elad_core.seeds import derive_seed, seeded_subset
from tasks.elad.prepare import read_examples


def test_a_round_samples_only_its_seeded_candidates(prefect_harness, tmp_path):
    """About 30 s on 2 cores."""
    from flows.elad.loop import active_distillation

    cfg = RunConfig.model_validate(tiny_config(
        tmp_path, run_name="candidates", rounds=3,  # own artifact keys (the session's API)
        selection={"seed_size": 8, "per_round": 3, "candidates": 5}))
    active_distillation(cfg)
    run = cfg.run_dir
    pool = [e.id for e in read_examples(run / "data" / "pool.parquet")]
    done = [r["question_id"] for r in read_parquet(run / "round_000" / "selected.parquet")]
    for r in (1, 2):
        rdir = run / f"round_{r:03d}"
        remaining = [q for q in pool if q not in set(done)]
        want = seeded_subset(remaining, 5, derive_seed(cfg.seed, "candidates", r))
        samples = read_parquet(rdir / "samples.parquet")
        assert len(samples) == 5 * cfg.student.k_samples
        assert sorted({s["question_id"] for s in samples}) == sorted(want)
        selected = [x["question_id"] for x in read_parquet(rdir / "selected.parquet")]
        assert len(selected) == 3 and set(selected) <= set(want)
        done += selected


def test_candidates_default_is_the_whole_remaining_pool():
    assert RunConfig().selection.candidates is None
    with pytest.raises(ValueError):
        RunConfig.model_validate({"selection": {"candidates": 0}})
