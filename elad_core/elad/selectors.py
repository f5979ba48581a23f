"""Uncertainty selectors: one tiny interface, higher score = more uncertain = picked first.

docs/design.md §2.2. Every selector scores the K sampled explanations of each question; the
selection step then takes the top-B questions not yet annotated. A new selector is one
class and one entry in SELECTORS; the contract test in tests/elad/test_selectors.py covers it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass

import numpy as np

Answer = str | None


@dataclass(frozen=True)
class SelectorInput:
    """What the student produced for n questions.

    answers: (n, K) final answers of the K samples. probe_answers: (n, K, m_k + 1) answers
    probed after 0..m_k steps of each sample (EGSS only). answer_logprobs: (n, K) mean
    log-prob (nats) of each sample's answer tokens, None where it has no answer
    (self_confidence only). seed: for `random`.
    """

    answers: list[list[Answer]]
    probe_answers: list[list[list[Answer]]] | None = None
    seed: int = 0
    answer_logprobs: list[list[float | None]] | None = None


class Selector(ABC):
    """Scores questions; `needs_probes` says whether EGSS-style step probes must be run."""

    needs_probes: bool = False

    @abstractmethod
    def score(self, inputs: SelectorInput) -> np.ndarray:
        """Uncertainty per question, shape (n,), float64, higher = more uncertain."""


def answer_distribution(answers: list[Answer]) -> list[float]:
    """p(y) over the K answers; None counts as its own value (docs/design.md §2.2)."""
    counts = Counter(answers)
    return [c / len(answers) for c in counts.values()]


def entropy(answers: list[Answer]) -> float:
    """H(p) in nats of the empirical answer distribution."""
    return float(-sum(p * math.log(p) for p in answer_distribution(answers)))


def flip_rate(probe_answers: list[Answer]) -> float:
    """(1/m) Σ_{i=1..m} 1[a⁽ⁱ⁾ ≠ a⁽ⁱ⁻¹⁾] for probes a⁽⁰⁾..a⁽ᵐ⁾; 0.0 when m = 0."""
    m = len(probe_answers) - 1
    if m <= 0:
        return 0.0
    return sum(probe_answers[i] != probe_answers[i - 1] for i in range(1, m + 1)) / m


class RandomSelector(Selector):
    """Baseline: uniform random scores in [0, 1), seeded."""

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return np.random.default_rng(inputs.seed).random(len(inputs.answers))


class MaxEntropy(Selector):
    """Answer entropy H(p) over the K samples, in nats; shape (n,), in [0, log K]."""

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return np.array([entropy(a) for a in inputs.answers])


class LeastConfidence(Selector):
    """1 − max_y p(y): one minus the share of the most common answer; in [0, 1 − 1/K]."""

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return np.array([1.0 - max(answer_distribution(a)) for a in inputs.answers])


class Disagreement(Selector):
    """Active-Prompt disagreement: distinct answers / K (None is an answer); in (0, 1]."""

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return np.array([len(set(a)) / len(a) for a in inputs.answers])


class SelfConfidence(Selector):
    """1 − mean_k exp(mean log-prob of the answer tokens of sample k); in [0, 1].

    A sample without an answer has probability 0 (docs/design.md §2.2, the student's own
    probability of its answers).
    """

    def score(self, inputs: SelectorInput) -> np.ndarray:
        if inputs.answer_logprobs is None:
            raise ValueError("self_confidence needs the samples' answer log-probs")
        return np.array([
            1.0 - float(np.mean([math.exp(lp) if lp is not None else 0.0 for lp in q]))
            for q in inputs.answer_logprobs
        ])


class EGSS(Selector):
    """ELAD explanation-guided sample selection: U_inter + λ·U_intra, each in [0, 1].

    U_inter = H(p) / log K (answer entropy across the K explanations); U_intra = mean over
    samples of the step flip rate of the probed answers. Reconstruction, docs/design.md §2.2.
    """

    needs_probes = True

    def __init__(self, lam: float = 1.0):
        self.lam = lam

    def score(self, inputs: SelectorInput) -> np.ndarray:
        if inputs.probe_answers is None:
            raise ValueError("EGSS needs probe answers; run the step probes first")
        inter = np.array([_normalised_entropy(a) for a in inputs.answers])
        intra = np.array(
            [np.mean([flip_rate(p) for p in q]) if q else 0.0 for q in inputs.probe_answers]
        )
        return inter + self.lam * intra


def _normalised_entropy(answers: list[Answer]) -> float:
    k = len(answers)
    return entropy(answers) / math.log(k) if k > 1 else 0.0


# The one place selectors are registered: name -> factory(lam).
SELECTORS = {
    "random": lambda lam: RandomSelector(),
    "max_entropy": lambda lam: MaxEntropy(),
    "least_confidence": lambda lam: LeastConfidence(),
    "disagreement": lambda lam: Disagreement(),
    "self_confidence": lambda lam: SelfConfidence(),
    "egss": lambda lam: EGSS(lam),
}


def make_selector(name: str, lam: float = 1.0) -> Selector:
    """Selector by name (docs/design.md §2.2); ValueError listing the choices for an unknown name."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name](lam)


def select_top(
    question_ids: list[str], scores: np.ndarray, exclude: set[str], budget: int
) -> list[str]:
    """The `budget` highest-scoring ids not in `exclude`; ties broken by id (deterministic).

    O(n log n). Returns fewer than `budget` ids when the pool is nearly exhausted.
    """
    order = sorted(
        (i for i, q in enumerate(question_ids) if q not in exclude),
        key=lambda i: (-float(scores[i]), question_ids[i]),
    )
    return [question_ids[i] for i in order[:budget]]
