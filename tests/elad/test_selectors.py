"""Selectors on hand-made cases (docs/design.md §2.2); each expected value is derived in a comment."""

import math

import numpy as np
import pytest

from elad_core.elad.selectors import (
    EGSS,
    SELECTORS,
    Disagreement,
    LeastConfidence,
    MaxEntropy,
    RandomSelector,
    SelectorInput,
    SelfConfidence,
    entropy,
    flip_rate,
    make_selector,
    select_top,
)


def test_entropy_counts_none_as_its_own_answer():
    # answers {1: 2/4, None: 2/4} -> H = log 2
    assert entropy(["1", "1", None, None]) == pytest.approx(math.log(2))
    assert entropy(["5"] * 4) == 0.0


def test_flip_rate():
    # probes a0..a3 = 7, 7, 9, 9: one change in m = 3 transitions -> 1/3
    assert flip_rate(["7", "7", "9", "9"]) == pytest.approx(1 / 3)
    # every step changes the conclusion -> 1
    assert flip_rate(["1", "2", "3"]) == 1.0
    # no steps (m = 0) -> no evidence of flipping
    assert flip_rate(["4"]) == 0.0


def test_egss_hand_made():
    answers = [
        ["3", "3", "3", "3"],    # q0: agree, steady reasoning
        ["3", "3", "3", "3"],    # q1: agree, but each sample's conclusion flips at every step
        ["1", "2", "3", "4"],    # q2: 4 distinct answers, steady reasoning
    ]
    steady = [["3", "3", "3"]] * 4
    flippy = [["1", "2", "3"]] * 4
    probes = [steady, flippy, [[a, a] for a in "1234"]]
    scores = EGSS(lam=1.0).score(SelectorInput(answers, probes))
    # q0: U_inter = 0 (one answer), U_intra = 0 -> 0
    # q1: U_inter = 0, U_intra = mean over samples of 2 flips / 2 steps = 1 -> 1
    # q2: U_inter = log 4 / log 4 = 1, U_intra = 0 -> 1
    assert scores == pytest.approx([0.0, 1.0, 1.0])
    # λ = 0.5 halves only the intra part: q1 -> 0.5, q2 stays 1
    assert EGSS(lam=0.5).score(SelectorInput(answers, probes)) == pytest.approx([0.0, 0.5, 1.0])


def test_egss_needs_probes():
    with pytest.raises(ValueError, match="probe"):
        EGSS().score(SelectorInput([["1", "2"]]))


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_selector_contract(name):
    """Every registered selector: shape (n,), finite, deterministic for a seed."""
    sel = make_selector(name)
    answers = [["1", "1"], ["1", "2"], [None, "3"]]
    probes = [[["1", "1"], ["1", "1"]], [["1", "2"], ["2", "2"]], [[None], ["3", "3"]]]
    logprobs = [[-0.1, -0.2], [-1.0, -0.5], [None, -2.0]]
    inp = SelectorInput(answers, probes if sel.needs_probes else None, seed=3,
                        answer_logprobs=logprobs)
    a, b = sel.score(inp), sel.score(inp)
    assert a.shape == (3,) and np.isfinite(a).all() and (a == b).all()
    if name != "random":
        # q0's samples agree with high probability; q2 disagrees and one sample has no
        # answer: every uncertainty score ranks q2 above q0
        assert a[2] > a[0]


BASELINE_CASE = [["7", "7", "7", "7"], ["7", "7", "7", "8"], ["1", "2", "3", None]]


def test_max_entropy_hand_made():
    # H = 0; -(3/4 log 3/4 + 1/4 log 1/4) = 0.5623; log 4 (4 distinct values, None included)
    assert MaxEntropy().score(SelectorInput(BASELINE_CASE)) == pytest.approx(
        [0.0, 0.5623351, math.log(4)], abs=1e-6)


def test_least_confidence_hand_made():
    # 1 - max share: 1 - 1, 1 - 3/4, 1 - 1/4
    assert LeastConfidence().score(SelectorInput(BASELINE_CASE)) == pytest.approx([0, 0.25, 0.75])


def test_disagreement_hand_made():
    # distinct / K: 1/4, 2/4, 4/4
    assert Disagreement().score(SelectorInput(BASELINE_CASE)) == pytest.approx([0.25, 0.5, 1.0])


def test_self_confidence_hand_made():
    # q0: answers certain (log-prob 0 -> p 1) -> 0; q1: p = e^-ln2 = 0.5 for both -> 0.5;
    # q2: one sample without answer counts p = 0, the other p = 1 -> 1 - 0.5 = 0.5
    inp = SelectorInput([["1", "1"], ["2", "2"], [None, "3"]],
                        answer_logprobs=[[0.0, 0.0], [-math.log(2)] * 2, [None, 0.0]])
    assert SelfConfidence().score(inp) == pytest.approx([0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="log-probs"):
        SelfConfidence().score(SelectorInput([["1"]]))


def test_random_depends_on_seed():
    inp = [["1"]] * 50
    assert not np.array_equal(RandomSelector().score(SelectorInput(inp, seed=0)),
                              RandomSelector().score(SelectorInput(inp, seed=1)))


def test_select_top_excludes_annotated_and_breaks_ties_by_id():
    ids = ["b", "a", "c", "d"]
    scores = np.array([0.5, 0.5, 0.9, 0.1])
    # c is highest; a and b tie at 0.5 -> id order a, b; excluding a leaves c, b
    assert select_top(ids, scores, set(), 3) == ["c", "a", "b"]
    assert select_top(ids, scores, {"a"}, 2) == ["c", "b"]
    assert select_top(ids, scores, {"a", "b", "c", "d"}, 2) == []


def test_unknown_selector_lists_choices():
    with pytest.raises(ValueError, match="egss"):
        make_selector("nope")
