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

from pydantic import SkipValidation

from elad_core.budget import Usage
from elad_core.elad.round_record import RoundRecord
from elad_core.refs import FileRef, Frozen


class AnnotationBatchRef(FileRef):
    """One teacher batch's annotations parquet (tasks/elad/annotate.py) and what it cost."""

    teacher_tokens: int
    cost_usd: float
    statuses: tuple[str, ...]


class DataRefs(Frozen):
    """ELAD's prepared splits (tasks/elad/data.py): the pool and the held-out eval split."""

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
