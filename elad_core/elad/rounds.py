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
from elad_core.elad.selectors.base import SelectorInput


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
