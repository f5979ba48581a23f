"""What a round will do, decided in one place (docs/design.md §2): which selector picks its
questions, which annotator the teacher uses, and how many questions it annotates.

Round 0 (the seed round) takes B0 = `selection.seed_size` questions at random and annotates
them with `teacher.seed_annotator`; later rounds take B = `selection.per_round` with
`selection.selector` and `teacher.annotator`; a round takes fewer when the pool runs out.
The round flow, its select step, the budget check and `elad plan`'s estimate all read this.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from elad_core.elad.config import RunConfig

SEED_SELECTOR = "random"  # the untrained student's samples carry no signal


class RoundPlan(BaseModel):
    """Round `round_index`'s selector name, annotator and number of questions (≥ 0)."""

    model_config = ConfigDict(frozen=True)

    round_index: int
    selector: str
    annotator: str
    questions: int

    @property
    def seed_round(self) -> bool:
        return self.round_index == 0


def plan_round(config: RunConfig, round_index: int, pool_left: int) -> RoundPlan:
    """The plan of round `round_index` when `pool_left` pool questions are not yet annotated."""
    sel, teacher = config.selection, config.teacher
    seed = round_index == 0
    wanted = sel.seed_size if seed else sel.per_round
    return RoundPlan(round_index=round_index,
                     selector=SEED_SELECTOR if seed else sel.selector,
                     annotator=teacher.seed_annotator if seed else teacher.annotator,
                     questions=max(0, min(wanted, pool_left)))


def plan_rounds(config: RunConfig, pool_size: int, start: int = 0) -> list[RoundPlan]:
    """The plans of rounds start..config.rounds-1 for a pool of `pool_size` questions, each
    round taking its questions from what the earlier ones left (0 once it is exhausted)."""
    left = pool_size
    for r in range(start):
        left -= plan_round(config, r, left).questions
    plans = []
    for r in range(start, config.rounds):
        plans.append(plan_round(config, r, left))
        left -= plans[-1].questions
    return plans
