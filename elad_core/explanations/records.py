"""Plain records passed between steps and written to parquet (one row per record).

All records are flat dataclasses of str / int / float / None so they round-trip through
pyarrow unchanged. Source: docs/design.md §2 (data flow) and §2.3 (annotation record).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One question of a dataset.

    id: stable id (hash of the normalised question text); rationale: gold steps, one per
    line, without the `#### answer` line ("" when the dataset has none); answer: normalised
    gold answer or None (unlabelled pool); family: answer family for normalisation
    ("number", "option", "label", "yesno").
    """

    id: str
    question: str
    rationale: str
    answer: str | None
    family: str = "number"


@dataclass(frozen=True)
class Sample:
    """One student explanation for one question (docs/design.md §2 step 1).

    answer_logprob: mean natural-log probability of the answer tokens after `#### `
    (None when no answer was produced). n_new_tokens: generated tokens, eos included.
    """

    question_id: str
    sample_index: int
    text: str
    answer: str | None
    answer_status: str  # ok | no_answer | unparsable
    answer_logprob: float | None
    n_new_tokens: int


@dataclass(frozen=True)
class Probe:
    """Greedy answer probe after the first `prefix_steps` steps of a sample (docs/design.md §2.2, EGSS)."""

    question_id: str
    sample_index: int
    prefix_steps: int
    answer: str | None


@dataclass(frozen=True)
class Annotation:
    """What the teacher returned for one selected question (docs/design.md §2.3).

    status: ok | unparsable | failed. target: training target (steps + `#### answer`), ""
    unless status is ok. accepted_steps: CLEAR only, student steps the teacher accepted.
    raw: the teacher's raw reply text (all turns for CLEAR, as a JSON list). Token counts
    are summed over every call made for this question; cost_usd likewise.
    """

    question_id: str
    annotator: str
    status: str
    target: str
    answer: str | None
    revised_sample: int | None
    accepted_steps: int | None
    raw: str
    error: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    n_requests: int
    # answers.ANSWER_RULES name that read the teacher's final answer, or "answer_turn" (read
    # from the answer turn, annotators.ANSWER_TURN_RULE); None: none / JSON field
    answer_rule: str | None = None
    # the teacher's answer equals the gold answer (None: no gold, or status not ok)
    teacher_agrees: bool | None = None

    @property
    def teacher_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def to_rows(records: list[Any]) -> list[dict[str, Any]]:
    """Dataclass records -> list of plain dicts (parquet rows)."""
    return [asdict(r) for r in records]


def from_rows(cls: type[T], rows: list[dict[str, Any]]) -> list[T]:
    """Plain dicts -> records of `cls`; extra columns are ignored."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return [cls(**{k: v for k, v in row.items() if k in names}) for row in rows]
