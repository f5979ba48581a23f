"""The selector interface (docs/design.md §2.2): what the student produced for n questions
(`SelectorInput`), `Selector` (higher score = more uncertain = picked first), the answer
statistics selectors share, the options selectors are built from (`SelectorOptions`) and the
pick rules (top-B, the random control slice)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from elad_core.refs import Frozen

Answer = str | None


class SelectorOptions(Frozen):
    """The options selectors are built from (`make_selector`), declared once here: the
    `selection.*` config fields of the same names take their defaults, bounds and help from
    these (elad_core.elad.config.SelectionConfig). A frozen model, so a task that takes it
    (`choose_auto`) is cached on its values."""

    egss_lambda: float = Field(1.0, ge=0, description="λ of EGSS = U_inter + λ·U_intra.")
    cost_alpha: float = Field(1.0, ge=0, description=(
        "egss_cost: score / predicted teacher tokens ** cost_alpha (docs/design.md §2.2.1)."))
    auto_agreement: float = Field(0.75, gt=0, le=1, description=(
        "auto: the share of the K samples a question's most common readable answer must "
        "reach for the question to count as agreed on (docs/design.md §2.2.5)."))
    auto_switch: float = Field(0.5, ge=0, le=1, description=(
        "auto: `typical` while fewer than this share of the remaining pool questions are "
        "agreed on, else auto_uncertainty."))
    auto_uncertainty: str = Field("egss", description=(
        "auto: the uncertainty selector it switches to (any selector but auto)."))

    @classmethod
    def of(cls, section: BaseModel) -> SelectorOptions:
        """These fields of a config section (a SelectionConfig)."""
        return cls(**section.model_dump(include=set(cls.model_fields)))


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

