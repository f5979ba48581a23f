"""Selectors: one tiny interface, higher score = more uncertain = picked first.

docs/design.md §2.2. Every selector scores the K sampled explanations of each question; the
selection step then takes the top-B questions not yet annotated (`Selector.select`, by default
score + `select_top`). Set-based selectors (`typical`, `hybrid`: elad_core/elad/typicality.py)
override `select`; `egss_cost` wraps EGSS in `CostAware` (§2.2.1); `auto` (elad_core/elad/auto.py)
picks one of them per round. A new selector is one class and one entry in SELECTORS; the
contract test in tests/elad/test_selectors.py covers it.
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
    (self_confidence only). seed: for `random` and the k-means of the set-based selectors.
    embeddings: (n, d) the student's question embeddings (`needs_embeddings`);
    annotated_embeddings: (m, d) those of the questions annotated in earlier rounds (which
    clusters are covered, `typical`). predicted_tokens: (n,) predicted teacher tokens per
    question, > 0 (`needs_costs`, `predicted_teacher_tokens`).
    """

    answers: list[list[Answer]]
    probe_answers: list[list[list[Answer]]] | None = None
    seed: int = 0
    answer_logprobs: list[list[float | None]] | None = None
    embeddings: np.ndarray | None = None
    annotated_embeddings: np.ndarray | None = None
    predicted_tokens: np.ndarray | None = None


class Selector(ABC):
    """Scores questions and picks B of them.

    Flags say what the round must compute first: `needs_probes` (EGSS step probes),
    `needs_embeddings` (the student's question embeddings), `needs_costs` (predicted teacher
    tokens per question).
    """

    needs_probes: bool = False
    needs_embeddings: bool = False
    needs_costs: bool = False

    @abstractmethod
    def score(self, inputs: SelectorInput) -> np.ndarray:
        """Uncertainty per question, shape (n,), float64, higher = more uncertain."""

    def select(self, inputs: SelectorInput, question_ids: list[str], exclude: set[str],
               budget: int) -> list[str]:
        """Up to `budget` ids of `question_ids` (aligned with `inputs`) not in `exclude`, in
        pick order. Default: the top scores (`select_top`); set-based selectors override it."""
        return select_top(question_ids, self.score(inputs), exclude, budget)


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


CHARS_PER_TOKEN = 4.0  # English BPE text: about 4 characters per token (docs/design.md §2.2.1)


def predicted_teacher_tokens(prompt_chars: np.ndarray, explanation_chars: np.ndarray,
                             annotator: str, completion_tokens: float) -> np.ndarray:
    """Predicted teacher tokens of annotating each question, shape (n,), tokens, all > 0.

    T(q) = completion_tokens + (chars(CoT prompt of q) + e · chars(x_q)) / CHARS_PER_TOKEN,
    e = 0 for `cot`, 1 for `clear` / `clear_single` (their requests carry the student's
    revised sample x_q). Only what the round knows before paying; a ranking model, not the
    budget's estimate (docs/design.md §2.2.1, §3.4). prompt_chars, explanation_chars: (n,).
    """
    e = 0.0 if annotator == "cot" else 1.0
    chars = np.asarray(prompt_chars, float) + e * np.asarray(explanation_chars, float)
    return float(completion_tokens) + np.maximum(chars, 0.0) / CHARS_PER_TOKEN + 1.0


class CostAware(Selector):
    """Any selector's score traded off against cost: score / T(q)**alpha (docs/design.md §2.2.1).

    T(q) = `SelectorInput.predicted_tokens` (tokens, > 0); alpha = `selection.cost_alpha`
    (alpha = 0 is the inner selector; 1 = uncertainty per teacher token). The inner scores
    must be ≥ 0 (all registered uncertainty scores are). ValueError without predicted tokens.
    """

    needs_costs = True

    def __init__(self, inner: Selector, alpha: float = 1.0):
        self.inner, self.alpha = inner, alpha
        self.needs_probes = inner.needs_probes
        self.needs_embeddings = inner.needs_embeddings

    def score(self, inputs: SelectorInput) -> np.ndarray:
        if inputs.predicted_tokens is None:
            raise ValueError("a cost-aware selector needs predicted teacher tokens per question")
        tokens = np.asarray(inputs.predicted_tokens, float)
        if tokens.shape != (len(inputs.answers),) or (tokens <= 0).any():
            raise ValueError(f"predicted tokens must be (n,) = ({len(inputs.answers)},) and > 0")
        return self.inner.score(inputs) / tokens ** self.alpha


@dataclass(frozen=True)
class SelectorOptions:
    """What selectors are built from: the `selection.*` fields of the same names (config.py)."""

    lam: float = 1.0  # selection.egss_lambda
    cost_alpha: float = 1.0
    auto_agreement: float = 0.75
    auto_switch: float = 0.5
    auto_uncertainty: str = "egss"


def _typicality():
    from elad_core.elad import typicality  # imports this module: loaded lazily

    return typicality


def _auto(o: SelectorOptions) -> Selector:
    from elad_core.elad.auto import Auto

    if o.auto_uncertainty == "auto":
        raise ValueError("auto_uncertainty cannot be 'auto'")
    return Auto(make_selector("typical"), make_selector(o.auto_uncertainty, **o.__dict__),
                o.auto_uncertainty, o.auto_agreement, o.auto_switch)


# The one place selectors are registered: name -> factory(SelectorOptions).
SELECTORS = {
    "random": lambda o: RandomSelector(),
    "max_entropy": lambda o: MaxEntropy(),
    "least_confidence": lambda o: LeastConfidence(),
    "disagreement": lambda o: Disagreement(),
    "self_confidence": lambda o: SelfConfidence(),
    "egss": lambda o: EGSS(o.lam),
    "egss_cost": lambda o: CostAware(EGSS(o.lam), o.cost_alpha),
    "typical": lambda o: _typicality().Typical(),
    "hybrid": lambda o: _typicality().Hybrid(EGSS(o.lam)),
    "auto": _auto,
}


def make_selector(name: str, lam: float = 1.0, **options) -> Selector:
    """Selector by name (docs/design.md §2.2); options: the other `SelectorOptions` fields.

    ValueError listing the choices for an unknown name.
    """
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name](SelectorOptions(**{**options, "lam": lam}))


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


def control_count(fraction: float, budget: int) -> int:
    """Questions of a round's B drawn as the random control slice: round(fraction · B), half
    up, in [0, B] (`selection.control_fraction`, docs/design.md §2.2.4)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"control fraction must be in [0, 1], got {fraction}")
    return min(budget, math.floor(fraction * budget + 0.5))


def control_picks(question_ids: list[str], exclude: set[str], n: int, seed: int) -> list[str]:
    """n ids drawn uniformly without replacement from `question_ids` not in `exclude`
    (seeded; the result does not depend on the input order). Fewer when few are left."""
    pool = sorted(q for q in set(question_ids) if q not in exclude)
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    return [pool[i] for i in order]
