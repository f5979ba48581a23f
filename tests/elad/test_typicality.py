"""Set-based selectors and `auto` (docs/design.md §2.2.2-§2.2.5) on hand-made embeddings."""

import numpy as np
import pytest

from elad_core.config_base import ConfigError
from elad_core.elad.selectors.auto import agreement_share, choose_selector
from elad_core.elad.config import load_config
from elad_core.elad.selectors import EGSS, MaxEntropy, SelectorOptions, make_selector
from elad_core.elad.selectors.base import SelectorInput, select_top
from elad_core.elad.selectors.typicality import Hybrid, Typical, typicality


def blobs(sizes, dim=8, seed=0, spread=0.5):
    """Well separated clusters: blob c around 10·e_c (distinct directions, so they stay
    apart after L2 normalisation). Returns (points, blob index per point)."""
    rng = np.random.default_rng(seed)
    x = [10 * np.eye(dim)[c] + spread * rng.standard_normal((n, dim)) for c, n in enumerate(sizes)]
    return np.vstack(x), np.repeat(np.arange(len(sizes)), sizes)


def ids_of(n):
    return [f"q{i:03d}" for i in range(n)]


def test_typicality_hand_made():
    # points 0, 1, 3 on a line, 1 neighbour: nearest distances 1, 1, 2 -> 1, 1, 0.5
    assert typicality(np.array([[0.0], [1.0], [3.0]]), knn=1) == pytest.approx([1, 1, 0.5])
    # 2 neighbours: mean distances (1+3)/2, (1+2)/2, (2+3)/2 -> 0.5, 2/3, 0.4
    assert typicality(np.array([[0.0], [1.0], [3.0]]), knn=2) == pytest.approx([0.5, 2 / 3, 0.4])
    assert typicality(np.array([[5.0, 1.0]])) == pytest.approx([0.0])  # a lone point


def test_typical_takes_one_typical_point_per_cluster_largest_first():
    x, blob = blobs([30, 20, 10, 5])
    ids = ids_of(len(x))
    inp = SelectorInput([["1"]] * len(x), seed=1, embeddings=x)
    picks = Typical().select(inp, ids, set(), 4)
    where = [blob[ids.index(q)] for q in picks]
    # k = 0 annotated + 4 = 4 clusters = the 4 blobs: one pick each, largest blob first
    assert where == [0, 1, 2, 3]
    # each pick is its blob's densest point: among the 3 nearest to the blob's centre
    for q, c in zip(picks, where, strict=True):
        members = np.flatnonzero(blob == c)
        centre = x[members].mean(axis=0)
        nearest = members[np.argsort(np.linalg.norm(x[members] - centre, axis=1))[:3]]
        assert ids.index(q) in nearest
    # plain "most typical first" would take them all from the big blob: clustering matters
    dense = select_top(ids, Typical().score(inp), set(), 4)
    assert {blob[ids.index(q)] for q in dense} != {0, 1, 2, 3}


def test_typical_fills_clusters_the_annotated_set_does_not_cover():
    x, blob = blobs([30, 20, 10, 5], seed=2)
    # one question annotated earlier in each of blobs 0 and 1
    done, _ = blobs([1, 1], seed=3)
    ids = ids_of(len(x))
    inp = SelectorInput([["1"]] * len(x), seed=0, embeddings=x, annotated_embeddings=done)
    picks = Typical().select(inp, ids, set(), 2)
    # k = 2 annotated + 2 = 4 clusters = the blobs; the uncovered ones are blobs 2 and 3,
    # although blobs 0 and 1 are larger and denser
    assert sorted(blob[ids.index(q)] for q in picks) == [2, 3]
    # ids in `exclude` (e.g. this round's control picks) count as covering their cluster
    excl = {ids[i] for i in np.flatnonzero(blob == 2)[:1]}
    picks = Typical().select(inp, ids, excl, 1)
    assert not excl & set(picks) and blob[ids.index(picks[0])] == 3


def test_typical_needs_embeddings_of_the_right_shape():
    with pytest.raises(ValueError, match="embeddings"):
        Typical().select(SelectorInput([["1"]] * 2), ["a", "b"], set(), 1)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        Typical().score(SelectorInput([["1"]] * 2, embeddings=np.zeros((3, 2))))


def test_hybrid_spreads_uncertain_picks_over_clusters():
    x, blob = blobs([12, 8, 6], seed=4)
    ids = ids_of(len(x))
    # blob 0 holds the 12 most uncertain questions (4 distinct answers of 4), blob 1 two
    # answers, blob 2 one answer; within a blob the first member disagrees most
    answers = [["1", "2", "3", "4"] if b == 0 else ["1", "1", "2", "2"] if b == 1
               else ["1"] * 4 for b in blob]
    for c, members in ((1, np.flatnonzero(blob == 1)), (2, np.flatnonzero(blob == 2))):
        answers[members[0]] = ["1", "2", "3", "3"] if c == 1 else ["1", "1", "1", "2"]
    inp = SelectorInput(answers, seed=0, embeddings=x)
    plain = select_top(ids, MaxEntropy().score(inp), set(), 3)
    assert {blob[ids.index(q)] for q in plain} == {0}  # uncertainty alone: one blob
    picks = Hybrid(MaxEntropy()).select(inp, ids, set(), 3)
    # k = 3 clusters = the blobs, largest first, each its most uncertain member
    assert [blob[ids.index(q)] for q in picks] == [0, 1, 2]
    assert picks[1] == ids[np.flatnonzero(blob == 1)[0]]
    assert picks[2] == ids[np.flatnonzero(blob == 2)[0]]
    assert picks[0] == min(ids[i] for i in np.flatnonzero(blob == 0))  # ties: by id
    # more than the candidates: all of them, none excluded
    assert sorted(Hybrid(MaxEntropy()).select(inp, ids, set(ids[2:]), 5)) == ids[:2]
    h = make_selector("hybrid", SelectorOptions(egss_lambda=0.5))
    assert isinstance(h.inner, EGSS) and h.needs_probes and h.needs_embeddings


def test_agreement_share():
    # agree (3/4 >= 0.75), 2/4 no, all None does not count, 4/4 agree -> 2 of 4
    answers = [["1", "1", "1", "2"], ["1", "1", "2", "2"], [None] * 4, ["5"] * 4]
    assert agreement_share(answers, 0.75) == 0.5
    assert agreement_share(answers, 0.5) == 0.75
    assert agreement_share([], 0.75) == 0.0


def test_auto_switches_when_agreement_crosses_the_threshold():
    unsure = [["1", "2", "3", "4"]] * 3 + [["7"] * 4]  # agreement 1/4
    sure = [["1", "2", "3", "4"]] + [["7"] * 4] * 3  # agreement 3/4
    low, high = choose_selector(unsure, "egss"), choose_selector(sure, "egss")
    assert (low.selector, low.agreement) == ("typical", 0.25)
    assert (high.selector, high.agreement) == ("egss", 0.75)
    assert "25%" in low.reason and "typical" in low.reason and "egss" in high.reason
    # exactly at the switch counts as agreeing; the threshold is configurable
    assert choose_selector(sure, "egss", switch=0.75).selector == "egss"
    assert choose_selector(sure, "egss", switch=0.8).selector == "typical"
    # Auto delegates select to the chosen selector
    x, _ = blobs([2, 2], dim=4)
    probes = [[["1", "1"]] * 4] * 4
    auto = make_selector("auto", SelectorOptions(auto_uncertainty="egss", auto_switch=0.5))
    ids = ids_of(4)
    for answers, inner in ((unsure, Typical()), (sure, EGSS())):
        inp = SelectorInput(answers, probes, seed=0, embeddings=x)
        assert auto.select(inp, ids, set(), 2) == inner.select(inp, ids, set(), 2)
    assert make_selector("auto", SelectorOptions(auto_uncertainty="max_entropy")).uncertain_name == "max_entropy"


def test_selection_config_fields_and_checks():
    sel = load_config().selection
    assert (sel.cost_alpha, sel.control_fraction, sel.auto_agreement, sel.auto_switch,
            sel.auto_uncertainty) == (1.0, 0.0, 0.75, 0.5, "egss")
    for bad in ({"selection.control_fraction": 1.5}, {"selection.auto_uncertainty": "auto"},
                {"selection.auto_uncertainty": "nope"}, {"selection.cost_alpha": -1}):
        with pytest.raises(ConfigError):
            load_config(overrides=bad)
