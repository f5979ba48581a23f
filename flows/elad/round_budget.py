"""ELAD's budget check at a round boundary (docs/design.md §2.6): whether round r may start,
and the BudgetState the round checks each teacher batch against (elad_core.budget)."""

from __future__ import annotations

from elad_core.budget import Budget, Usage, read_history, round_refusal
from elad_core.elad.cost import Estimator, estimator_for, gold_solutions
from elad_core.elad.config import RunConfig
from elad_core.elad.plan import plan_round
from elad_core.elad.round_record import RoundRecord
from elad_core.elad.state import BudgetState, RoundState


def round_budget(config: RunConfig, estimator: Estimator, rounds: list[RoundRecord], r: int,
                 pool_left: int) -> tuple[str | None, BudgetState | None]:
    """(why round r must not start or None, round r's BudgetState: spend so far, estimated
    usage per annotation and for the round).

    rounds: the earlier rounds' records; pool_left: pool questions not yet annotated (0: the
    pool is exhausted and no state is returned).
    """
    if pool_left == 0:
        return "pool exhausted", None
    plan = plan_round(config, r, pool_left)
    est = estimator.round(r, plan.annotator, plan.questions, [x.as_dict() for x in rounds])
    spent = Usage(sum(x.teacher_tokens for x in rounds), sum(x.cost_usd for x in rounds))
    return round_refusal(Budget.from_config(config), est, spent), BudgetState(
        spent=spent, per_annotation=est.per_annotation,
        estimate={"teacher_tokens": round(est.usage.teacher_tokens),
                  "cost_usd": round(est.usage.cost_usd, 6), "basis": est.basis})


def budget_from_run_folder(config: RunConfig, round_index: int, state: RoundState,
                            pool: list) -> BudgetState:
    """Round `round_index`'s budget state when distill_round runs on its own (no loop built
    it): the earlier rounds' records are the manifests in the run folder, as for `elad plan`.
    Budgets are never left unchecked."""
    history = [RoundRecord.from_manifest(r) for r in read_history(config.run_dir.resolve())
               if r["round"] < round_index]
    estimator = estimator_for(config.teacher, [e.question for e in pool],
                              solutions=gold_solutions(pool))
    pool_left = max(1, len(pool) - len(state.annotated))
    return round_budget(config, estimator, history, round_index, pool_left)[1]
