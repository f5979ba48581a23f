"""Seeds derived by hashing and the one seeded subset (elad_core.seeds)."""

from __future__ import annotations

from elad_core.seeds import derive_seed, seeded_subset


def test_derived_seeds_do_not_collide_where_sums_did():
    # the old EvoKD scheme seed*7 + round: (seed 0, round 7) == (seed 1, round 0)
    assert 0 * 7 + 7 == 1 * 7 + 0
    assert derive_seed(0, "replay", 7) != derive_seed(1, "replay", 0)
    grid = {derive_seed(s, p, r, j) for s in range(5) for p in ("sample", "select", "replay")
            for r in range(8) for j in range(4)}
    assert len(grid) == 5 * 3 * 8 * 4
    assert all(0 <= x < 2**31 for x in grid)


def test_derived_seeds_are_stable_and_purpose_matters():
    assert derive_seed(3, "sample", 1, 2) == derive_seed(3, "sample", 1, 2)
    assert derive_seed(3, "sample", 1, 2) != derive_seed(3, "select", 1, 2)
    assert derive_seed(3, "sample", 12) != derive_seed(3, "sample", 1, 2)  # no "1"+"2" == "12"


def test_seeded_subset_keeps_order_and_is_reproducible():
    items = list(range(100))
    a, b = seeded_subset(items, 10, seed=4), seeded_subset(items, 10, seed=4)
    assert a == b and a == sorted(a) and len(set(a)) == 10
    assert seeded_subset(items, 10, seed=5) != a
    assert seeded_subset(items, None, 1) == items and seeded_subset(items, 500, 1) == items
