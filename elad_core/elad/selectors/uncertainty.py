"""Uncertainty selectors over the K sampled explanations of each question (docs/design.md §2.2):
random (the baseline), answer entropy, least confidence, disagreement, self-confidence, and
ELAD's explanation-guided EGSS."""

from __future__ import annotations

import math

import numpy as np

from elad_core.elad.selectors.base import (
    Answer,
    Selector,
    SelectorInput,
    answer_distribution,
    entropy,
    flip_rate,
)


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

