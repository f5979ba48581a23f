"""`selector: auto`: typicality while the student is unsure of everything, then uncertainty.

docs/design.md §2.2.5. The rule uses only what a round has without test gold: the student's K
sampled answers on the remaining pool. agreement = the share of those questions whose most
common answer is a readable answer (not None) held by at least `selection.auto_agreement`
(0.75) of the K samples. agreement < `selection.auto_switch` (0.5): `typical` (cold start:
uncertainty says little when nearly every question is uncertain, §5.2); otherwise
`selection.auto_uncertainty` (`egss`). The rule is evaluated afresh every round.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from elad_core.elad.selectors.base import Answer, Selector, SelectorInput
from elad_core.refs import Frozen


class AutoChoice(Frozen):
    """Which selector `auto` chose for a round and why (recorded in selected.parquet and the
    round's manifest); agreement: the share in [0, 1] of remaining pool questions the student's
    K samples agree on."""

    selector: str
    reason: str
    agreement: float


def agreement_share(answers: list[list[Answer]], threshold: float) -> float:
    """Share in [0, 1] of questions (rows of the (n, K) answers) whose most common answer is
    not None and has a share ≥ threshold of the K; 0.0 for n = 0."""
    if not answers:
        return 0.0
    agree = 0
    for row in answers:
        counts = Counter(a for a in row if a is not None)
        agree += bool(counts) and max(counts.values()) / len(row) >= threshold
    return agree / len(answers)


def choose_selector(answers: list[list[Answer]], uncertainty: str, agreement: float = 0.75,
                    switch: float = 0.5) -> AutoChoice:
    """The per-round rule of docs/design.md §2.2.5: `typical` below the switch, else
    `uncertainty`. answers: (n, K) sampled final answers of the remaining pool."""
    share = agreement_share(answers, agreement)
    agrees = f"K samples agree (≥ {agreement:.2f} of K) on {share:.0%} of {len(answers)} questions"
    if share < switch:
        return AutoChoice(selector="typical", agreement=share,
                          reason=f"{agrees} < {switch:.0%}: typicality (cold start)")
    return AutoChoice(selector=uncertainty, agreement=share,
                      reason=f"{agrees} ≥ {switch:.0%}: uncertainty ({uncertainty})")


class Auto(Selector):
    """Delegates each call to `typical` or the uncertainty selector by `choose_selector`.

    The flags are the union of both (a round that resolves first computes only what the
    chosen one needs: flows/elad/round.py step [2]).
    """

    needs_embeddings = True

    def __init__(self, typical: Selector, uncertain: Selector, uncertain_name: str,
                 agreement: float = 0.75, switch: float = 0.5):
        self.typical, self.uncertain, self.uncertain_name = typical, uncertain, uncertain_name
        self.agreement, self.switch = agreement, switch
        self.needs_probes = uncertain.needs_probes
        self.needs_costs = uncertain.needs_costs

    def choose(self, inputs: SelectorInput) -> AutoChoice:
        return choose_selector(inputs.answers, self.uncertain_name, self.agreement, self.switch)

    def resolve(self, inputs: SelectorInput) -> Selector:
        return self.typical if self.choose(inputs).selector == "typical" else self.uncertain

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return self.resolve(inputs).score(inputs)

    def select(self, inputs: SelectorInput, question_ids: list[str], exclude: set[str],
               budget: int) -> list[str]:
        return self.resolve(inputs).select(inputs, question_ids, exclude, budget)
