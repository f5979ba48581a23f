"""Is selection paying on this task? The per-round selection report (issue #16,
docs/design.md §2.2.4).

For the round's selected questions and, apart, its random control slice
(`selection.control_fraction`), the report gives: how many there are, the share whose
student majority answer (over its K samples) agreed with the teacher's answer before the
student trained on them (low = the selector found what the student gets wrong), the usable
share of the teacher's replies, and the teacher tokens per question. With the round's
accuracy gain per 1,000 teacher tokens, a user sees on their own task, without test gold
for the pool, whether the selected questions are worth what they cost against random ones.
"""

from __future__ import annotations

from collections import Counter

from elad_core.explanations.records import Annotation, Sample


def majority_answers(samples: list[Sample]) -> dict[str, str | None]:
    """question_id -> the most frequent answer of its samples (first seen wins a tie;
    None when no sample has an answer)."""
    answers: dict[str, list[str]] = {}
    for s in samples:
        answers.setdefault(s.question_id, [])
        if s.answer is not None:
            answers[s.question_id].append(s.answer)
    return {q: (Counter(a).most_common(1)[0][0] if a else None) for q, a in answers.items()}


def selection_report(annotations: list[Annotation], control: set[str],
                     samples: list[Sample] | None) -> dict[str, dict]:
    """{"selected": figures, "control": figures} (control only when the round had a control
    slice). figures: questions, student_agrees_teacher (share of usable replies whose answer
    equals the student's majority answer; None without samples, i.e. the seed round),
    teacher_usable_rate, teacher_tokens_per_question."""
    majority = majority_answers(samples) if samples else None
    groups = {"selected": [a for a in annotations if a.question_id not in control],
              "control": [a for a in annotations if a.question_id in control]}
    out = {}
    for name, anns in groups.items():
        if not anns and name == "control":
            continue
        usable = [a for a in anns if a.status == "ok"]
        agree = None
        if majority is not None and usable:
            agree = round(sum(majority.get(a.question_id) == a.answer for a in usable)
                          / len(usable), 4)
        out[name] = {
            "questions": len(anns), "student_agrees_teacher": agree,
            "teacher_usable_rate": round(len(usable) / len(anns), 4) if anns else None,
            "teacher_tokens_per_question": (round(sum(a.teacher_tokens for a in anns)
                                                  / len(anns), 1) if anns else None)}
    return out


def gain_per_1k_tokens(accuracy: float | None, previous: float | None,
                       teacher_tokens: int) -> float | None:
    """The round's accuracy gain (points of accuracy, 0-1 scale) per 1,000 teacher tokens;
    None in the seed round (no previous accuracy) or when nothing was paid."""
    if accuracy is None or previous is None or teacher_tokens <= 0:
        return None
    return round((accuracy - previous) / (teacher_tokens / 1000), 6)
