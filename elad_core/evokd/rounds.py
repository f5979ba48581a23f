"""The pure steps of an EvoKD round (docs/design.md §2.5) between the teacher and the student:
what the teacher is shown, what comes back, what the student trains on. No Prefect, no I/O.

Round r >= 1, method `evokd`:
  1. feedback: the student's predictions on the latest batch, taken *before* it trained on
     it (round 1: the round-0 student on the k-shot seeds it was trained on), judged
     against the teacher's labels (no gold needed) -> right / wrong examples;
  2. analyse (teacher) shown `show_right` right and `show_wrong` wrong examples;
  3. generate n_hard + n_easy texts in the same conversation;
  4. label them (a separate call);
  5. the student continues training on the new batch + `replay` examples of earlier ones.
Baselines: `static` replaces 1-3 by one generate call shown only the seed examples;
`random` replaces them by a draw from the reserve pool; `kshot` stops after round 0.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from elad_core.evokd import prompts
from elad_core.evokd.datasets import TaskExample, text_id, text_key


@dataclass(frozen=True)
class BatchRow:
    """One text of a round's batch. origin: seed | hard | easy | static | random; label:
    the teacher's (seeds: the given k-shot label), None when it gave none; status: ok |
    unlabelled | duplicate (already in an earlier batch) | too_long."""

    id: str
    text: str
    label: str | None
    origin: str
    round: int
    status: str


def feedback_rows(batch: list[dict], predictions: list[str]) -> list[dict]:
    """Batch rows with status ok + the student's prediction and whether it equals the label
    (NER: the whole tag sequence)."""
    usable = [b for b in batch if b["status"] == "ok"]
    return [{"id": b["id"], "text": b["text"], "label": b["label"], "origin": b["origin"],
             "prediction": p, "correct": p == b["label"]}
            for b, p in zip(usable, predictions, strict=True)]


def pick_shown(feedback: list[dict], show_right: int, show_wrong: int,
               seed: int) -> tuple[list[dict], list[dict]]:
    """(right, wrong) feedback rows shown to the analysis: seeded samples of each."""
    rng = random.Random(seed)
    right = [f for f in feedback if f["correct"]]
    wrong = [f for f in feedback if not f["correct"]]
    return (rng.sample(right, min(show_right, len(right))),
            rng.sample(wrong, min(show_wrong, len(wrong))))


def analyse_request(kind: str, task: str, labels: list[str], right: list[dict],
                    wrong: list[dict]) -> list[dict]:
    """Chat messages of the analysis call (docs/design.md §2.5 step 2)."""
    show = prompts.answer_text
    return prompts.analyse_messages(
        task, prompts.labels_text(kind, labels),
        [(f["text"], show(kind, f["text"], f["label"])) for f in right],
        [(f["text"], show(kind, f["text"], f["label"]), show(kind, f["text"], f["prediction"]))
         for f in wrong])


def static_request(kind: str, task: str, labels: list[str], seeds: list[TaskExample],
                   n: int) -> list[dict]:
    """Chat messages of a static (AugGPT-like) generation call: the seeds, nothing else."""
    return prompts.static_messages(task, prompts.labels_text(kind, labels),
                                   [(e.text, prompts.answer_text(kind, e.text, e.label))
                                    for e in seeds], n)


def label_request(kind: str, task: str, labels: list[str], texts: list[str]) -> list[dict]:
    """Chat messages of the label call for one batch (step 4)."""
    return prompts.label_messages(kind, task, prompts.labels_text(kind, labels), texts)


def new_rows(texts: list[tuple[str, str]], seen: set[str], round_index: int,
             max_chars: int) -> list[BatchRow]:
    """Generated (text, origin) -> unlabelled BatchRows; a text already in `seen` (earlier
    batches, or earlier in this list) is status duplicate, one over max_chars too_long.
    NER texts are kept as whitespace-separated tokens."""
    out, seen = [], set(seen)
    for text, origin in texts:
        key = text_key(text)
        status = ("duplicate" if key in seen else "too_long" if len(key) > max_chars
                  else "unlabelled")
        seen.add(key)
        out.append(BatchRow(text_id(key), key, None, origin, round_index, status))
    return out


def with_labels(rows: list[BatchRow], labels: list[str | None]) -> list[BatchRow]:
    """Rows sent to the label call (status unlabelled, in order) get their labels: status
    ok, or unlabelled where the teacher's reply had none."""
    it = iter(labels)
    out = []
    for r in rows:
        if r.status != "unlabelled":
            out.append(r)
            continue
        y = next(it)
        out.append(BatchRow(r.id, r.text, y, r.origin, r.round, "ok" if y else "unlabelled"))
    return out


def random_draw(reserve: list[TaskExample], seen: set[str], n: int, seed: int) -> list[str]:
    """n reserve texts not in `seen`, drawn uniformly with `seed` (the random baseline)."""
    pool = [e.text for e in reserve if text_key(e.text) not in seen]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def replay_sample(earlier: list[dict], n: int, seed: int) -> list[dict]:
    """n rows drawn with `seed` from earlier batches' labelled rows (all when fewer)."""
    usable = [r for r in earlier if r["status"] == "ok"]
    return random.Random(seed).sample(usable, min(n, len(usable)))


def train_steps(n_examples: int, cfg) -> int:
    """Optimizer steps of a round on n_examples (EvoKDTrainConfig `cfg`): `cfg.steps` when
    set, else ceil(epochs × n / min(batch_size, n)) clamped to [min_steps, max_steps]."""
    if cfg.steps:
        return cfg.steps
    batch = max(1, min(cfg.batch_size, n_examples))
    steps = math.ceil(cfg.epochs * n_examples / batch)
    return max(cfg.min_steps, min(cfg.max_steps, steps))


def chat(client, messages: list[dict]):
    """One teacher call through `TeacherClient` (litellm) -> TeacherReply. Raises its
    Transient- / PermanentTeacherError."""
    return asyncio.run(client.chat(messages))
