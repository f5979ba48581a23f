"""Cost-aware selection (docs/design.md §2.2.1): an uncertainty score traded off against the
predicted teacher tokens of annotating each question."""

from __future__ import annotations

import numpy as np

from elad_core.elad.selectors.base import Selector, SelectorInput


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

