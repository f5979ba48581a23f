"""Selectors on hand-made cases (docs/design.md §2.2); each expected value is derived in a comment."""

import math

import numpy as np
import pytest

from elad_core.elad.selectors.cost import CHARS_PER_TOKEN, predicted_teacher_tokens
from elad_core.elad.selectors import (
    CostAware,
    Disagreement,
    EGSS,
    LeastConfidence,
    MaxEntropy,
    RandomSelector,
    SELECTORS,
    SelfConfidence,
    SelectorOptions,
    make_selector,
)
from elad_core.elad.selectors.base import (
    SelectorInput,
    control_count,
    control_picks,
    entropy,
    flip_rate,
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
    # equal predicted costs and embeddings on a line (q0 and q2 far apart) keep the ranking
    inp = SelectorInput(answers, probes if sel.needs_probes else None, seed=3,
                        answer_logprobs=logprobs,
                        embeddings=np.array([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0]])
                        if sel.needs_embeddings else None,
                        predicted_tokens=np.full(3, 100.0) if sel.needs_costs else None)
    a, b = sel.score(inp), sel.score(inp)
    assert a.shape == (3,) and np.isfinite(a).all() and (a == b).all()
    if name not in ("random", "typical", "auto"):  # typicality is not an uncertainty score
        # q0's samples agree with high probability; q2 disagrees and one sample has no
        # answer: every uncertainty score ranks q2 above q0
        assert a[2] > a[0]
    ids = ["q0", "q1", "q2"]
    picks = sel.select(inp, ids, {"q1"}, 2)
    # select: distinct ids, none excluded, deterministic; fewer only when the pool runs out
    assert sorted(picks) == ["q0", "q2"] and sel.select(inp, ids, {"q1"}, 2) == picks
    assert sel.select(inp, ids, {"q1"}, 5) == picks and sel.select(inp, ids, set(), 0) == []


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


def test_cost_aware_prefers_the_cheaper_of_equally_uncertain_questions():
    answers = [["1", "2"], ["1", "2"], ["1", "1"]]  # q0, q1 equally uncertain; q2 certain
    inp = SelectorInput(answers, seed=0, predicted_tokens=np.array([400.0, 100.0, 50.0]))
    scores = CostAware(MaxEntropy(), alpha=1.0).score(inp)
    # ln 2 / 400, ln 2 / 100, 0 / 50
    assert scores == pytest.approx([math.log(2) / 400, math.log(2) / 100, 0.0])
    assert select_top(["q0", "q1", "q2"], scores, set(), 1) == ["q1"]
    # without the cost term (alpha = 0) q0 and q1 tie and the id decides: q0
    plain = CostAware(MaxEntropy(), alpha=0.0).score(inp)
    assert plain == pytest.approx(MaxEntropy().score(inp))
    assert select_top(["q0", "q1", "q2"], plain, set(), 1) == ["q0"]
    # alpha trades: a question twice as uncertain but 4x dearer wins at alpha 0.25, loses at 1
    inp2 = SelectorInput([["1", "1"], ["1", "2"]], predicted_tokens=np.array([100.0, 400.0]))
    inner = np.array([0.5, 1.0])

    class Fixed(MaxEntropy):
        def score(self, inputs):
            return inner

    assert np.argmax(CostAware(Fixed(), 0.25).score(inp2)) == 1  # 1/400^.25 > .5/100^.25
    assert np.argmax(CostAware(Fixed(), 1.0).score(inp2)) == 0


def test_cost_aware_needs_positive_predicted_tokens():
    with pytest.raises(ValueError, match="predicted teacher tokens"):
        CostAware(MaxEntropy()).score(SelectorInput([["1"]]))
    with pytest.raises(ValueError, match="> 0"):
        CostAware(MaxEntropy()).score(SelectorInput([["1"]], predicted_tokens=np.array([0.0])))
    sel = make_selector("egss_cost", SelectorOptions(egss_lambda=0.5, cost_alpha=2.0))
    assert sel.needs_probes and sel.needs_costs and sel.alpha == 2.0 and sel.inner.lam == 0.5


def test_predicted_teacher_tokens_formula():
    prompt, expl = np.array([400.0, 800.0]), np.array([200.0, 0.0])
    # cot ignores the student's explanation: 256 + 400/4 + 1, 256 + 800/4 + 1
    assert predicted_teacher_tokens(prompt, expl, "cot", 256) == pytest.approx([357, 457])
    # clear / clear_single send it: 256 + 600/4 + 1, 256 + 800/4 + 1
    for annotator in ("clear", "clear_single"):
        assert predicted_teacher_tokens(prompt, expl, annotator, 256) == pytest.approx(
            [256 + 600 / CHARS_PER_TOKEN + 1, 457])


def test_control_count_rounds_half_up_and_checks_range():
    assert [control_count(f, 4) for f in (0.0, 0.1, 0.125, 0.25, 1.0)] == [0, 0, 1, 1, 4]
    assert control_count(0.5, 7) == 4  # 3.5 -> 4
    with pytest.raises(ValueError, match="control fraction"):
        control_count(1.5, 4)


def test_control_picks_are_uniform_seeded_and_skip_annotated():
    ids = [f"q{i:02d}" for i in range(20)]
    a = control_picks(ids, {"q00", "q01"}, 5, seed=7)
    assert len(set(a)) == 5 and not {"q00", "q01"} & set(a)
    assert control_picks(list(reversed(ids)), {"q00", "q01"}, 5, seed=7) == a  # order-free
    assert control_picks(ids, {"q00", "q01"}, 5, seed=8) != a
    assert control_picks(ids, set(ids[1:]), 5, seed=1) == ["q00"]  # pool nearly exhausted
    # uniform: over 2000 seeds each of the 18 ids is drawn 2000·5/18 ≈ 556 times; a
    # binomial sd is ≈ 21, so every count lies within ±100 unless the draw is biased
    counts = {q: 0 for q in ids[2:]}
    for seed in range(2000):
        for q in control_picks(ids, {"q00", "q01"}, 5, seed):
            counts[q] += 1
    assert all(abs(c - 2000 * 5 / 18) < 100 for c in counts.values()), counts
