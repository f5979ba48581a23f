"""The refs EvoKD's tasks hand to each other and to the flow (docs/design.md §2.5, §3): the
prepared data, a round's batch, the student's feedback on it, the trained weights and what the
student tasks need to load the student. Typed and frozen (elad_core.refs)."""

from __future__ import annotations

from elad_core.refs import FileRef, Frozen


class RowsRef(FileRef):
    """A parquet file of `rows` example rows (id, text, label, source)."""

    rows: int


class EvoKDData(Frozen):
    """The prepared task (prepare_evokd_data): its label set, kind ("classification" | "ner"),
    the k-shot seeds, the fixed eval subset and the reserve the oracle teacher draws from."""

    labels: list[str]
    kind: str
    seeds: RowsRef
    eval: RowsRef
    reserve: RowsRef


class BatchRef(FileRef):
    """A round's batch.parquet: `ok` usable labelled rows of `rows`."""

    ok: int
    rows: int


class FeedbackRef(FileRef):
    """The student's predictions on a batch (feedback.parquet): `correct` of `n` rows."""

    n: int
    correct: int


class TrainedRef(FileRef):
    """Weights a round trained (an adapter or model folder) and how: the loss of every step,
    examples, wall time (s) and precision ("bf16" | "fp32")."""

    losses: list[float]
    n_examples: int
    wall_s: float
    precision: str


class StudentSpec(Frozen):
    """What the student tasks load and are cached on: the base model (path or hub id) and its
    content hash, the training mode and the student.* settings they use."""

    base: str
    base_sha: str
    mode: str
    device: str
    max_length: int
    bf16: bool | str
    num_threads: int | None
