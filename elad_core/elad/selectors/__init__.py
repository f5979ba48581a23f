"""Selectors: one tiny interface, higher score = more uncertain = picked first.

docs/design.md §2.2. Every selector scores the K sampled explanations of each question; the
selection step then takes the top-B questions not yet annotated (`Selector.select`, by default
score + `select_top`). The interface is `base.py`; uncertainty selectors `uncertainty.py`;
set-based selectors (`typical`, `hybrid`) `typicality.py`, which override `select`;
`egss_cost` wraps EGSS in `CostAware` (`cost.py`, §2.2.1); `auto` (`auto.py`) picks one of
them per round. A new selector is one file (a `Selector` subclass) and one entry in SELECTORS
below, the single source of the config's, the CLI's and the tests' list of choices; the
contract test in tests/elad/test_selectors.py covers it.
"""

from __future__ import annotations

from elad_core.elad.selectors.auto import Auto
from elad_core.elad.selectors.base import Selector, SelectorOptions
from elad_core.elad.selectors.cost import CostAware
from elad_core.elad.selectors.typicality import Hybrid, Typical
from elad_core.elad.selectors.uncertainty import (
    EGSS,
    Disagreement,
    LeastConfidence,
    MaxEntropy,
    RandomSelector,
    SelfConfidence,
)

__all__ = ["EGSS", "SELECTORS", "Auto", "CostAware", "Disagreement", "Hybrid", "LeastConfidence",
           "MaxEntropy", "RandomSelector", "SelfConfidence", "SelectorOptions", "Typical",
           "make_selector"]


def _auto(o: SelectorOptions) -> Selector:
    if o.auto_uncertainty == "auto":
        raise ValueError("auto_uncertainty cannot be 'auto'")
    return Auto(make_selector("typical"), make_selector(o.auto_uncertainty, o),
                o.auto_uncertainty, o.auto_agreement, o.auto_switch)


# The one place selectors are registered: name -> factory(SelectorOptions).
SELECTORS = {
    "random": lambda o: RandomSelector(),
    "max_entropy": lambda o: MaxEntropy(),
    "least_confidence": lambda o: LeastConfidence(),
    "disagreement": lambda o: Disagreement(),
    "self_confidence": lambda o: SelfConfidence(),
    "egss": lambda o: EGSS(o.egss_lambda),
    "egss_cost": lambda o: CostAware(EGSS(o.egss_lambda), o.cost_alpha),
    "typical": lambda o: Typical(),
    "hybrid": lambda o: Hybrid(EGSS(o.egss_lambda)),
    "auto": _auto,
}


def make_selector(name: str, options: SelectorOptions | None = None) -> Selector:
    """Selector by name (docs/design.md §2.2), built from `options` (default: SelectorOptions()).

    ValueError listing the choices for an unknown name.
    """
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name](options or SelectorOptions())
