"""Pure per-round logic between the expensive steps (docs/design.md §2 steps 2-5).

Turning samples into probe plans and selector inputs, choosing which sample the teacher
revises, building teacher requests and training pairs. No I/O, no Prefect.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from elad_core.elad.annotators import AnnotationRequest
from elad_core.explanations.steps import split_steps
from elad_core.explanations.prompt import probe_prompt, student_prompt
from elad_core.explanations.records import Annotation, Probe, Sample
from elad_core.elad.reply_quality import reply_quality
from elad_core.elad.selection_report import gain_per_1k_tokens
from elad_core.elad.selectors import SelectorInput


@dataclass(frozen=True)
class ProbeItem:
    """One EGSS probe to run: the prompt after `prefix_steps` steps of one sample."""

    question_id: str
    sample_index: int
    prefix_steps: int
    prompt: str


def group_samples(samples: list[Sample]) -> dict[str, list[Sample]]:
    """question_id -> its samples ordered by sample_index (insertion order of ids kept)."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.question_id].append(s)
    return {q: sorted(v, key=lambda s: s.sample_index) for q, v in groups.items()}


def probe_plan(samples: list[Sample], questions: dict[str, str], max_steps: int,
               template: str | None = None) -> list[ProbeItem]:
    """Probes for EGSS U_intra: for each sample with m steps, prefixes i = 0..min(m, max_steps).

    Returns sum_k (m_k + 1) items (docs/design.md §2.2). template: the student's chat prompt
    template (prompts.student_prompt), None: plain format.
    """
    items = []
    for s in samples:
        steps = split_steps(s.text)[:max_steps]
        q = questions[s.question_id]
        for i in range(len(steps) + 1):
            items.append(ProbeItem(s.question_id, s.sample_index, i, probe_prompt(q, steps[:i], template)))
    return items


def selector_input(
    question_ids: list[str], samples: list[Sample], probes: list[Probe] | None, seed: int
) -> SelectorInput:
    """Assemble (n, K) answers / log-probs and (n, K, m+1) probe answers in `question_ids` order."""
    by_q = group_samples(samples)
    answers = [[s.answer for s in by_q[q]] for q in question_ids]
    logprobs = [[s.answer_logprob for s in by_q[q]] for q in question_ids]
    if probes is None:
        return SelectorInput(answers, None, seed, logprobs)
    chains: dict[tuple[str, int], list[Probe]] = defaultdict(list)
    for p in probes:
        chains[(p.question_id, p.sample_index)].append(p)
    probe_answers = [
        [
            [p.answer for p in sorted(chains[(q, s.sample_index)], key=lambda p: p.prefix_steps)]
            for s in by_q[q]
        ]
        for q in question_ids
    ]
    return SelectorInput(answers, probe_answers, seed, logprobs)


def pick_revision_sample(samples: list[Sample]) -> Sample:
    """The sample CLEAR revises: the first whose answer is the majority answer (docs/design.md §2.3).

    Ties between equally common answers go to the answer seen first.
    """
    counts = Counter(s.answer for s in samples)
    best = max(counts.values())
    majority = next(s.answer for s in samples if counts[s.answer] == best)
    return next(s for s in samples if s.answer == majority)


def annotation_requests(
    selected: list[str], questions: dict[str, str], samples: list[Sample] | None
) -> list[AnnotationRequest]:
    """Teacher requests for the selected ids; with samples, each carries the revised sample."""
    if samples is None:
        return [AnnotationRequest(q, questions[q]) for q in selected]
    by_q = group_samples(samples)
    out = []
    for q in selected:
        s = pick_revision_sample(by_q[q])
        out.append(AnnotationRequest(q, questions[q], s.text, s.sample_index, s.answer))
    return out


def training_pairs(
    annotations: list[Annotation], questions: dict[str, str], filter_wrong_teacher: bool = False,
    template: str | None = None,
) -> tuple[list[tuple[str, str]], Counter]:
    """(prompt, target) pairs from the ok annotations, and a Counter of what was left out.

    The Counter counts left-out annotations by status; with `filter_wrong_teacher`, ok
    annotations whose answer disagrees with the gold answer (`teacher_agrees` False, see
    mark_teacher_agreement) are left out too and counted as "teacher_wrong".
    """
    pairs, skipped = [], Counter()
    for a in annotations:
        if a.status == "ok" and a.target:
            if filter_wrong_teacher and a.teacher_agrees is False:
                skipped["teacher_wrong"] += 1
                continue
            pairs.append((student_prompt(questions[a.question_id], template), a.target))
        else:
            skipped[a.status] += 1
    return pairs, skipped


def mark_teacher_agreement(
    annotations: list[Annotation], gold: dict[str, str | None]
) -> list[Annotation]:
    """Each annotation with `teacher_agrees` set (docs/design.md §2.3, filter_wrong_teacher).

    gold: question_id -> normalised gold answer (None or missing: unlabelled). teacher_agrees
    is answer == gold for ok annotations with a gold answer, else None. Nothing is dropped
    here: the annotations stay in the parquet, and training_pairs leaves out the disagreeing.
    """
    out = []
    for a in annotations:
        g = gold.get(a.question_id)
        agrees = (a.answer == g) if a.status == "ok" and g is not None else None
        out.append(a if a.teacher_agrees is agrees else replace(a, teacher_agrees=agrees))
    return out


def chunks(items: list, size: int) -> list[list]:
    """`items` in consecutive lists of `size` (the last may be shorter): shards and batches."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def round_record(*, round_index: int, selector: str, annotator: str, prompt_version: str,
                 selected: list[str], annotations: list[Annotation], budget_stop: str | None,
                 budget_estimate: dict | None, trained: dict | None, train_mode: str | None,
                 metrics: dict | None, batches: int, cached_batches: int,
                 shards: list[dict] | None, step_wall_s: dict[str, float], wall_s: float,
                 config: dict, teacher_stop: str | None = None,
                 auto_choice: dict | None = None, selection: dict | None = None,
                 previous_accuracy: float | None = None, student: dict | None = None) -> dict:
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
    return {
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
    }
