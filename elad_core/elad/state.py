"""The state ELAD's loop hands from round to round, as typed records that cross task and flow
boundaries (docs/design.md §3): refs to data, student and weights, the budget state, and
what a round hands back (its RoundRecord and the new refs).

Frozen pydantic models: Prefect hashes them for cache keys like the plain values they hold
(its JSON serializer; tests/elad/test_state.py checks a change of any field changes the key), a
flow validates them as parameters, and the UI shows them as JSON. Files travel as a path
plus the sha256 content hash of the file or folder (elad_core.files.hash_file / hash_dir),
never as loaded models.
"""

from __future__ import annotations

from pydantic import BaseModel, SkipValidation

from elad_core.budget import Usage
from elad_core.elad.round_record import RoundRecord
from elad_core.refs import FileRef, Frozen


class AnnotationBatchRef(FileRef):
    """One teacher batch's annotations parquet (tasks/elad/annotate.py) and what it cost."""

    teacher_tokens: int
    cost_usd: float
    statuses: tuple[str, ...]


class ShardRef(FileRef):
    """One sampling or probe shard's parquet (tasks/elad/student.py) and what it took: the
    task's wall time (s), the student's new tokens (sampling) or probes run (probing)."""

    wall_s: float
    new_tokens: int = 0
    n_probes: int = 0


class MergedRef(FileRef):
    """Shard parquet files concatenated in order (tasks/elad/shards.py merge_shards)."""

    rows: int


class EmbeddingsRef(FileRef):
    """The pool's question embeddings (tasks/elad/embed.py): `rows` questions of `dim` floats,
    computed in `wall_s` seconds."""

    rows: int
    dim: int
    wall_s: float


class TrainedRef(FileRef):
    """Weights a round trained (an adapter or model folder, tasks/elad/student.py) and how:
    the loss of every step, the examples of D trained on, those left out per reason
    ({"teacher_wrong": n, ...}), wall time (s) and precision ("bf16" | "fp32")."""

    losses: list[float]
    n_examples: int
    skipped: dict[str, int]
    wall_s: float
    precision: str


class Settings(Frozen):
    """Some fields of a config section, as a task's input (only they are in its cache key)."""

    @classmethod
    def of(cls, section: BaseModel) -> Settings:
        """These fields of the config section `section` (e.g. a StudentConfig)."""
        return cls(**section.model_dump(include=set(cls.model_fields)))


class SamplingSettings(Settings):
    """The student.* settings sampling uses (elad_core.elad.config.StudentConfig): K
    explanations per question at temperature τ, at most max_new_tokens each, generate_batch_size
    sequences per generate() call, on `device`."""

    k_samples: int
    temperature: float
    max_new_tokens: int
    generate_batch_size: int
    device: str


class ProbeSettings(Settings):
    """The student.* settings EGSS probes use: decode length, prompts per batch, at most
    max_probe_steps step prefixes per sample, on `device`."""

    probe_max_new_tokens: int
    probe_batch_size: int
    max_probe_steps: int
    device: str


class CostSpec(Frozen):
    """What predicts a question's teacher tokens (selectors that `needs_costs`): the pool's
    questions, the annotator and the estimated completion tokens per teacher call."""

    pool: str
    pool_sha: str
    annotator: str
    completion_tokens: int


class DataRefs(Frozen):
    """ELAD's prepared splits (tasks/elad/prepare.py): the pool and the held-out eval split."""

    pool: str
    pool_sha: str
    eval: str
    eval_sha: str
    # per split, what merging repeated questions did (elad_core.elad.duplicates.DuplicateReport)
    duplicates: dict[str, dict] = {}


class StudentRef(Frozen):
    """The student's base model: a folder (built, local or converted from GGUF, with its content
    hash; for GGUF the file's sha256) or a hub id (its own name as the hash); `source`: what
    `student.model` named; `prompt_template`: the chat prompt with a `{question}` slot
    (prompts.student_prompt), None for the plain `Question: …\nAnswer:` format."""

    base: str
    base_sha: str
    source: str | None = None
    prompt_template: str | None = None


class BudgetState(Frozen):
    """What a round needs to keep within the budgets (elad_core.budget): the teacher spend of
    the earlier rounds, the estimated usage of one annotation, and the round's estimate as
    written to its manifest."""

    spent: Usage
    per_annotation: Usage
    estimate: dict


class RoundState(Frozen):
    """The state ELAD's loop hands to a round (flows/elad/round.py): refs, the ids of D (the
    questions annotated so far), the annotation batches of D, where the teacher is, the budget."""

    data: DataRefs
    student: StudentRef
    weights: FileRef | None = None  # None: the base model (no round trained yet)
    annotated: tuple[str, ...] = ()
    annotation_files: tuple[AnnotationBatchRef, ...] = ()
    api_base: str | None = None
    budget: BudgetState | None = None  # None: the round reads the history from the run folder
    last_accuracy: float | None = None  # the previous round's (None before round 0 ends)


class RoundResult(Frozen):
    """What a round hands back to the loop: its record (the manifest.json) and the new state."""

    record: SkipValidation[RoundRecord]  # built by round_record: not coerced again
    selected_ids: tuple[str, ...]
    weights: FileRef | None  # None: still the base model (a seed round stopped before training)
    annotation_files: tuple[AnnotationBatchRef, ...]

    def next_state(self, state: RoundState) -> RoundState:
        """The loop's state after this round: D grows by the selected ids, the student's
        weights and D's annotation batches are this round's."""
        return state.model_copy(update={
            "weights": self.weights, "annotation_files": self.annotation_files,
            "annotated": state.annotated + self.selected_ids,
            "last_accuracy": self.record.accuracy})
