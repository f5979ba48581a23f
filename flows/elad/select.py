"""Steps [1]-[3] of an ELAD round (docs/design.md §2): which questions the teacher sees.

Round 0 (the seed round) takes B0 questions at random: the untrained student's samples carry
no signal. Later rounds: [1] the student samples K explanations per not-yet-annotated pool
question (or per question of a seeded subset, `selection.candidates`), [2] the selector scores
them, with what it needs computed first (EGSS step probes, the student's question
embeddings, predicted teacher tokens; `auto` first picks typicality or uncertainty), [3] the
top-B not yet annotated are selected (`selection.control_fraction` of them at random).
Called inside the round flow (flows/elad/round.py); every step is a cached task.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from elad_core.elad.config import RunConfig
from elad_core.explanations.records import Example
from elad_core.elad.rounds import chunks
from elad_core.elad.plan import RoundPlan
from elad_core.elad.selectors import SelectorOptions, make_selector
from elad_core.elad.selectors.auto import AutoChoice
from elad_core.refs import FileRef
from elad_core.elad.state import (
    CostSpec,
    MergedRef,
    ProbeSettings,
    RoundState,
    SamplingSettings,
    ShardRef,
)
from elad_core.seeds import derive_seed, seeded_subset
from elad_core.timing import StepTimer
from tasks import in_run
from tasks.elad.embed import embed_pool
from tasks.elad.select import choose_auto, score_and_select, select_seed
from tasks.elad.shards import merge_shards
from tasks.elad.student import probe_shard, sample_shard


class Selection(NamedTuple):
    """What steps [1]-[3] hand on: the selected ids (rank order), the merged samples' ref and
    the sampling shards' refs with their wall time and new tokens (None in the seed round),
    and `auto`'s choice (or None)."""

    selected: list[str]
    samples_ref: FileRef | None
    shards: list[ShardRef] | None
    auto_choice: AutoChoice | None


def select_questions(config: RunConfig, plan: RoundPlan, state: RoundState,
                     pool: list[Example], timer: StepTimer, gpu: Callable) -> Selection:
    """Steps [1]-[3] of the round `plan` describes (module doc): up to `plan.questions`
    questions picked by `plan.selector`. gpu: () -> the context holding a slot of the
    server-wide GPU limit around each student step."""
    run_dir, round_index = config.run_dir.resolve(), plan.round_index
    rdir = run_dir / f"round_{round_index:03d}"
    data, student, weights = state.data, state.student, state.weights
    family, sc, sel = config.data.answer_family, config.student, config.selection
    shards, samples_ref, auto_choice = None, None, None
    if plan.seed_round:  # [3] the untrained student carries no signal: B0 random questions
        with timer("select"):
            selected = in_run(select_seed, run_dir)(
                data, plan.questions,
                derive_seed(config.seed, "select", 0), rdir / "selected.parquet")
    else:
        # [1] the student samples K explanations per not-yet-annotated pool question
        # (or per question of a seeded random subset of them: selection.candidates)
        annotated = set(state.annotated)  # once, not per pool question
        remaining = [e.id for e in pool if e.id not in annotated]
        if sel.candidates is not None:
            remaining = seeded_subset(remaining, sel.candidates,
                                      derive_seed(config.seed, "candidates", round_index))
        sampling = SamplingSettings.of(sc)
        with gpu(), timer("sample"):
            shards, samples_ref = _shards_merged(sample_shard, run_dir, rdir, "samples", [
                (student, weights, data, ids, sampling, family,
                 derive_seed(config.seed, "sample", round_index, j))
                for j, ids in enumerate(chunks(remaining, sc.shard_questions))])
        # [2] uncertainty per question (EGSS probes every step prefix of every sample);
        # `auto` first picks typicality or uncertainty from the samples (design §2.2.5), and
        # the selector says what else it needs: probes, embeddings, predicted teacher tokens
        options = SelectorOptions.of(sel)
        if plan.selector == "auto":
            auto_choice = in_run(choose_auto, run_dir)(samples_ref, options)
        active = auto_choice.selector if auto_choice else plan.selector
        chosen = make_selector(active, options)  # once a round
        probes_ref, embeddings_ref, cost = None, None, None
        if chosen.needs_embeddings:  # the student's own question embeddings (design §2.2.2)
            with gpu(), timer("embed"):
                embeddings_ref = in_run(embed_pool, run_dir)(
                    student, weights, data, sc.generate_batch_size,
                    sc.device, rdir / "embeddings.parquet")
        if chosen.needs_costs:  # predicted teacher tokens per question (design §2.2.1)
            cost = CostSpec(pool=data.pool, pool_sha=data.pool_sha, annotator=plan.annotator,
                            completion_tokens=config.teacher.completion_tokens_estimate)
        if chosen.needs_probes:
            probing = ProbeSettings.of(sc)
            with gpu(), timer("probe"):
                _, probes_ref = _shards_merged(probe_shard, run_dir, rdir, "probes", [
                    (student, weights, data, s, probing, family) for s in shards])
        # [3] the top-B not yet annotated (selection.control_fraction of them at random)
        with timer("select"):
            selected = in_run(score_and_select, run_dir)(
                chosen, active, samples_ref, probes_ref, list(state.annotated),
                plan.questions, derive_seed(config.seed, "select", round_index), rdir,
                embeddings=embeddings_ref, cost=cost,
                control_fraction=sel.control_fraction,
                control_seed=derive_seed(config.seed, "control", round_index),
                auto_choice=auto_choice)
    return Selection(selected, samples_ref, shards, auto_choice)


def _shards_merged(shard_task, run_dir: Path, rdir: Path, name: str,
                   calls: list[tuple]) -> tuple[list[ShardRef], MergedRef]:
    """`shard_task` submitted once per argument tuple of `calls` (the j-th writes
    rdir/shards/<name>_<j:04d>.parquet), all awaited in order, then merged into
    rdir/<name>.parquet: the shards' refs and the merged file's."""
    submit = in_run(shard_task, run_dir).submit
    futures = [submit(*args, rdir / "shards" / f"{name}_{j:04d}.parquet")
               for j, args in enumerate(calls)]
    shards = [f.result() for f in futures]
    return shards, in_run(merge_shards, run_dir)(shards, rdir / f"{name}.parquet")
