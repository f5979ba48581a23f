"""EvoKD splits (docs/design.md §2.5): what a run reads, drawn from a task's train and test
splits (elad_core.evokd.datasets) -- the k-shot seed draw, the fixed evaluation subset and
the oracle's reserve pool, all seeded. Pure Python, no Prefect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from elad_core.errors import DataError
from elad_core.evokd.datasets import (
    DEFAULT_LABELS,
    TaskExample,
    entity_types,
    example_types,
    label_set,
    load_task_split,
    text_key,
)
from elad_core.seeds import seeded_subset


def kshot_seeds(examples: list[TaskExample], kind: str, k: int, seed: int,
                labels: list[str] | None = None) -> list[TaskExample]:
    """The k-shot seed set: k random examples per label (classification), or greedy k-shot
    NER sampling (for each entity type in order, sentences holding it until k are chosen;
    Yang & Katiyar 2020). Raises DataError when a label / type has fewer than k."""
    rng = random.Random(seed)
    order = list(examples)
    rng.shuffle(order)
    chosen: list[TaskExample] = []
    if kind == "classification":
        for name in labels or sorted({e.label for e in examples}):
            have = [e for e in order if e.label == name][:k]
            if len(have) < k:
                raise DataError(f"data.k_shot={k}: label {name!r} has only {len(have)} examples")
            chosen += have
        return chosen
    for etype in entity_types(examples):
        count = sum(etype in example_types(e) for e in chosen)
        for e in order:
            if count >= k:
                break
            if e not in chosen and etype in example_types(e):
                chosen.append(e)
                count += 1
        if count < k:
            raise DataError(f"data.k_shot={k}: entity type {etype!r} is in only {count} sentences")
    return chosen


def reserve_pool(train: list[TaskExample], seeds: list[TaskExample], size: int | None,
                 seed: int) -> list[TaskExample]:
    """The oracle's labelled reserve: the train split minus the seeds, one example per
    distinct text (first kept), seeded subset of `size`."""
    taken = {text_key(e.text) for e in seeds}
    unique: dict[str, TaskExample] = {}
    for e in train:
        key = text_key(e.text)
        if key not in taken and key not in unique:
            unique[key] = e
    return seeded_subset(list(unique.values()), size, seed)


@dataclass(frozen=True)
class PreparedTask:
    """What a run reads: the k-shot seeds, the fixed eval subset, the oracle's reserve pool,
    the closed label set (classification names or NER BIO tags) and the kind."""

    seeds: list[TaskExample]
    eval: list[TaskExample]
    reserve: list[TaskExample]
    labels: list[str]
    kind: str


def prepare_task(task: str, dataset: str | None, train_split: str, test_split: str,
                 fields: dict[str, str], labels: list[str] | None, k_shot: int,
                 eval_size: int | None, reserve_size: int | None, seed: int) -> PreparedTask:
    """Load both splits and draw the seeds, eval subset and reserve (all seeded).

    Raises DataError on a bad row, a test label outside the train split's label set, or
    too few examples for k_shot.
    """
    kind = "ner" if task in ("wnut17", "ner") else "classification"
    train = load_task_split(task, dataset, train_split, fields, labels)
    test = load_task_split(task, dataset, test_split, fields, labels)
    names = label_set(kind, train, labels or DEFAULT_LABELS.get(task))
    for e in test:
        if not set(e.tags if kind == "ner" else [e.label]) <= set(names):
            raise DataError(f"{e.source}: field 'label': {e.label[:60]!r} holds a label the "
                            f"train split does not have ({names})")
    seeds = kshot_seeds(train, kind, k_shot, seed, names if kind == "classification" else None)
    return PreparedTask(seeds, seeded_subset(test, eval_size, seed),
                        reserve_pool(train, seeds, reserve_size, seed), names, kind)
