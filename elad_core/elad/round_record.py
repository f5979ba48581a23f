"""One ELAD round's record (docs/design.md §2 step 8): its manifest.json and, without its
`config`, its row of summary.json. Typed: the fields, their order and their meaning are
declared once, in `RoundRecord`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from elad_core.elad.reply_quality import reply_quality
from elad_core.elad.selection_report import gain_per_1k_tokens
from elad_core.explanations.records import Annotation
from elad_core.run_summary import Invocation, SummaryJson


@dataclass(frozen=True)
class RoundRecord:
    """One round's figures, in manifest order. Tokens are teacher tokens (prompt +
    completion), costs USD, times seconds; accuracy and parse rates are shares in [0, 1] of the
    held-out questions (None for a round stopped before evaluation)."""

    round: int
    selector: str  # "random" in the seed round
    auto_choice: dict | None  # what `selector: auto` chose and why
    annotator: str
    prompt_version: str
    selected: int
    annotated: int
    budget_stop: str | None
    budget_estimate: dict | None
    annotations_ok: int
    annotation_statuses: dict[str, int]
    train_examples: int
    train_mode: str | None
    teacher_wrong: int  # ok annotations whose answer disagrees with the gold answer
    teacher_wrong_dropped: int  # annotations of D training left out for it
    teacher_usable_rate: float | None  # elad_core.elad.reply_quality
    teacher_gold_agreement: float | None
    unusable_teacher_tokens: int
    unusable_cost_usd: float
    answer_rules: dict[str, float]
    teacher_stop: str | None
    precision: str | None
    teacher_tokens: int
    cost_usd: float
    teacher_batches: int
    teacher_batches_cached: int
    accuracy: float | None
    parse_rate: float | None
    flexible_accuracy: float | None
    flexible_parse_rate: float | None
    eval_loss: float | None
    accuracy_gain_per_1k_tokens: float | None
    selection_report: dict | None
    train_loss: float | None
    train_loss_first: float | None
    sampled_new_tokens: int
    sample_compute_s: float
    step_wall_s: dict[str, float]
    wall_s: float
    student: dict | None
    config: dict

    @classmethod
    def from_manifest(cls, manifest: dict) -> RoundRecord:
        """The record of a round's manifest.json as read back (elad_core.budget.read_history);
        a field an older manifest lacks is None, a key this version does not know is left out."""
        return cls(**{f.name: manifest.get(f.name) for f in dataclasses.fields(cls)})

    def as_dict(self) -> dict:
        """The manifest.json object."""
        return dataclasses.asdict(self)

    def summary_row(self) -> dict:
        """The row of summary.json: the manifest without the run's config."""
        return {k: v for k, v in self.as_dict().items() if k != "config"}


def round_record(*, round_index: int, selector: str, annotator: str, prompt_version: str,
                 selected: list[str], annotations: list[Annotation], budget_stop: str | None,
                 budget_estimate: dict | None, trained: dict | None, train_mode: str | None,
                 metrics: dict | None, batches: int, cached_batches: int,
                 shards: list[dict] | None, step_wall_s: dict[str, float], wall_s: float,
                 config: dict, teacher_stop: str | None = None,
                 auto_choice: dict | None = None, selection: dict | None = None,
                 previous_accuracy: float | None = None, student: dict | None = None) -> RoundRecord:
    """One ELAD round's record: its manifest.json and its row of summary.json (docs/design.md
    §2 step 8). trained: the train task's result (losses, n_examples, skipped, precision);
    metrics: the evaluation's (accuracy and parse_rate strict and flexible, eval_loss); both None for a round
    stopped for unusable teacher replies (`teacher_stop` says why). shards: the sampling
    shards' results (None in the seed round). Train losses are means of the first / last
    tenth of the steps; the teacher-reply figures are elad_core.elad.reply_quality's;
    auto_choice: what `selector: auto` chose and why (elad_core.elad.selectors.auto), else None;
    selection: the round's selection report (elad_core.elad.selection_report);
    previous_accuracy: the last round's, for the accuracy gain per 1k teacher tokens;
    student: the round's StudentRef (what `student.model` named, the base folder, the sha256 of
    its weights (of the GGUF file for a converted model) and its prompt template)."""
    losses = trained["losses"] if trained else []
    tail = max(1, len(losses) // 10)
    metrics = metrics or {"accuracy": None, "parse_rate": None, "eval_loss": None}
    return RoundRecord(**{
        "round": round_index, "selector": selector, "auto_choice": auto_choice,
        "annotator": annotator, "prompt_version": prompt_version, "selected": len(selected),
        "annotated": len(annotations), "budget_stop": budget_stop,
        "budget_estimate": budget_estimate,
        "annotations_ok": sum(a.status == "ok" for a in annotations),
        "annotation_statuses": {s: sum(a.status == s for a in annotations)
                                for s in sorted({a.status for a in annotations})},
        "train_examples": trained["n_examples"] if trained else 0, "train_mode": train_mode,
        # this round's ok annotations whose answer disagrees with the gold answer, and the
        # annotations of D that training left out for it (teacher.filter_wrong_teacher)
        "teacher_wrong": sum(a.teacher_agrees is False for a in annotations),
        "teacher_wrong_dropped": (trained or {}).get("skipped", {}).get("teacher_wrong", 0),
        **reply_quality(annotations), "teacher_stop": teacher_stop,
        "precision": (trained or {}).get("precision"),
        "teacher_tokens": sum(a.teacher_tokens for a in annotations),
        "cost_usd": round(sum(a.cost_usd for a in annotations), 6),
        "teacher_batches": batches, "teacher_batches_cached": cached_batches,
        "accuracy": metrics["accuracy"], "parse_rate": metrics["parse_rate"],
        "flexible_accuracy": metrics.get("flexible_accuracy"),
        "flexible_parse_rate": metrics.get("flexible_parse_rate"),
        "eval_loss": metrics["eval_loss"],
        "accuracy_gain_per_1k_tokens": gain_per_1k_tokens(
            metrics["accuracy"], previous_accuracy, sum(a.teacher_tokens for a in annotations)),
        "selection_report": selection,
        "train_loss": sum(losses[-tail:]) / tail if losses else None,
        "train_loss_first": sum(losses[:tail]) / tail if losses else None,
        "sampled_new_tokens": sum(s.get("new_tokens", 0) for s in shards) if shards else 0,
        "sample_compute_s": sum(s.get("wall_s", 0.0) for s in shards) if shards else 0.0,
        "step_wall_s": step_wall_s, "wall_s": wall_s, "student": student, "config": config,
    })


@dataclass(frozen=True)
class RunSummary(SummaryJson):
    """What `active_distillation` returns and writes as summary.json: one row per round
    (RoundRecord.summary_row plus `cumulative_teacher_tokens`), why the run ended, the data's
    duplicate report, then this invocation's teacher requests and wall time (`Invocation`, its
    keys last in summary.json)."""

    run_name: str
    rounds: list[dict]
    stopped: str
    data: dict
    invocation: Invocation
