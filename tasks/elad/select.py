"""Selection tasks: scores and the B questions of a round (docs/design.md §2 steps 2-3, §2.2),
called by flows/elad/select.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from prefect import task

from elad_core.elad import rounds
from elad_core.elad.selectors.auto import AutoChoice, choose_selector
from elad_core.elad.prompts import cot_messages
from elad_core.explanations.records import Probe, Sample, from_rows
from elad_core.elad.selectors import RandomSelector, SelectorOptions
from elad_core.elad.selectors.base import (
    Selector,
    SelectorInput,
    control_count,
    control_picks,
    select_top,
)
from elad_core.elad.selectors.cost import predicted_teacher_tokens
from elad_core.elad.state import CostSpec, DataRefs
from elad_core.files import read_parquet, write_parquet
from elad_core.refs import FileRef
from tasks import CONTENT_CACHE
from tasks.elad.prepare import read_examples
from tasks.elad.embed import read_embeddings


@task(cache_policy=CONTENT_CACHE)
def select_seed(data: DataRefs, budget: int, seed: int, out_path: Path) -> list[str]:
    """Round 0: B0 random pool questions (the untrained student's samples carry no signal)."""
    ids = [e.id for e in read_examples(data.pool)]
    scores = RandomSelector().score(SelectorInput([[None]] * len(ids), seed=seed))
    selected = select_top(ids, scores, set(), budget)
    write_parquet(Path(out_path), [{"question_id": q, "rank": i} for i, q in enumerate(selected)])
    return selected


@task(cache_policy=CONTENT_CACHE)
def choose_auto(samples: FileRef, options: SelectorOptions) -> AutoChoice:
    """`selector: auto`'s choice for this round from the student's K answers on the remaining
    pool (docs/design.md §2.2.5). options: auto_uncertainty, auto_agreement and auto_switch
    decide."""
    sample_rows = from_rows(Sample, read_parquet(Path(samples.path)))
    by_q = rounds.group_samples(sample_rows)
    answers = [[x.answer for x in by_q[q]] for q in by_q]
    return choose_selector(answers, options.auto_uncertainty, options.auto_agreement,
                           options.auto_switch)


@task(cache_policy=CONTENT_CACHE)
def score_and_select(selector: Selector, selector_name: str, samples: FileRef,
                     probes: FileRef | None, annotated: list[str], budget: int, seed: int,
                     round_dir: Path, embeddings: FileRef | None = None,
                     cost: CostSpec | None = None, control_fraction: float = 0.0,
                     control_seed: int = 0, auto_choice: AutoChoice | None = None) -> list[str]:
    """Score every sampled question and pick B not yet annotated (docs/design.md §2.2).

    samples, probes: the merged samples and probes (None: no probes).
    selector: the round's selector, built once by the round (`make_selector`); selector_name:
    its name, recorded as `picked_by` (for `auto`: the selector auto chose).
    embeddings: an `embed_pool` ref (selectors
    that `needs_embeddings`). cost: what predicts the teacher tokens of a question (`needs_costs`). control_fraction: that share of B drawn
    uniformly at random first (seeded by control_seed, §2.2.4), spread evenly through the
    pick order. auto_choice: `choose_auto`'s result, recorded when `selector` came from auto.
    Writes round_dir/scores.parquet (question_id, score, answers[, predicted_tokens]) and
    selected.parquet (question_id, rank, score, control, picked_by, auto_choice).
    """
    sample_rows = from_rows(Sample, read_parquet(Path(samples.path)))
    probe_rows = from_rows(Probe, read_parquet(Path(probes.path))) if probes else None
    by_q = rounds.group_samples(sample_rows)
    ids = list(by_q)
    inputs = rounds.selector_input(ids, sample_rows, probe_rows, seed)
    if embeddings:
        emb = read_embeddings(embeddings)
        done = [emb[q] for q in annotated if q in emb]
        inputs = dataclasses.replace(
            inputs, embeddings=np.stack([emb[q] for q in ids]) if ids else None,
            annotated_embeddings=np.stack(done) if done else None)
    if cost:
        text = {e.id: e.question for e in read_examples(cost.pool)}
        prompt_chars = [sum(len(m["content"]) for m in cot_messages(text[q])) for q in ids]
        sample_chars = [len(rounds.pick_revision_sample(by_q[q]).text) for q in ids]
        inputs = dataclasses.replace(inputs, predicted_tokens=predicted_teacher_tokens(
            np.array(prompt_chars), np.array(sample_chars), cost.annotator,
            cost.completion_tokens))
    sel = selector
    scores = sel.score(inputs) if ids else np.zeros(0)
    control = control_picks(ids, set(annotated), control_count(control_fraction, budget),
                            control_seed)
    picked = sel.select(inputs, ids, set(annotated) | set(control), budget - len(control)) \
        if ids else []
    selected = interleave(picked, control)
    round_dir = Path(round_dir)
    write_parquet(round_dir / "scores.parquet", [
        {"question_id": q, "score": float(s), "answers": [str(a) for a in ans],
         **({"predicted_tokens": float(inputs.predicted_tokens[i])} if cost else {})}
        for i, (q, s, ans) in enumerate(zip(ids, scores, inputs.answers, strict=True))
    ])
    position, is_control = {q: i for i, q in enumerate(ids)}, set(control)
    reason = auto_choice.reason if auto_choice else None
    write_parquet(round_dir / "selected.parquet", [
        {"question_id": q, "rank": r, "score": float(scores[position[q]]),
         "control": q in is_control, "picked_by": "control" if q in is_control else selector_name,
         "auto_choice": reason} for r, q in enumerate(selected)
    ])
    return selected


def interleave(picks: list[str], control: list[str]) -> list[str]:
    """picks with the control ids spread evenly through them (control j at position
    ⌊(j + ½)·N / c⌋ of the N = len(picks) + c), so a budget that stops the round early keeps
    about the same control share."""
    n, c = len(picks) + len(control), len(control)
    slots = {int((j + 0.5) * n / c): q for j, q in enumerate(control)} if c else {}
    rest = iter(picks)
    return [slots[i] if i in slots else next(rest) for i in range(n)]
