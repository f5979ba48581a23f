"""How usable a teacher's replies are, and when a round stops for them (issue #15,
docs/design.md §2.3).

A tool that saves teacher money must say at once when the replies it pays for cannot be
used (a model that never states its answer in a readable way, a wrong answer family, an
endpoint that answers errors): every round reports its usable-reply rate, its agreement with
gold where gold is known, and the tokens and dollars spent on unusable replies; and a round
whose usable share falls below `teacher.min_usable_fraction` stops after that batch, with one
line naming the cause and showing one raw reply. Everything paid for stays cached (the batch
results and their reply journals), so a re-run after fixing the setting pays nothing twice.
"""

from __future__ import annotations

import json

from elad_core.explanations.records import Annotation

RAW_SHOWN_CHARS = 160  # of the raw reply quoted in the stop line


def reply_quality(annotations: list[Annotation]) -> dict:
    """A round's teacher-reply figures for its manifest: usable (status ok) share of the
    replies, agreement with gold among usable replies with gold (None when none), and the
    teacher tokens / USD spent on the unusable ones; `answer_rules`: the share of the usable
    replies each reader rule read (Annotation.answer_rule: answers.ANSWER_RULES or
    "answer_turn"; "none" for a reply whose answer came from elsewhere, e.g. the label sent)."""
    bad = [a for a in annotations if a.status != "ok"]
    ok = [a.answer_rule or "none" for a in annotations if a.status == "ok"]
    judged = [a.teacher_agrees for a in annotations if a.teacher_agrees is not None]
    return {
        "teacher_usable_rate": (round(1 - len(bad) / len(annotations), 4)
                                if annotations else None),
        "teacher_gold_agreement": round(sum(judged) / len(judged), 4) if judged else None,
        "unusable_teacher_tokens": sum(a.teacher_tokens for a in bad),
        "unusable_cost_usd": round(sum(a.cost_usd for a in bad), 6),
        "answer_rules": {r: round(ok.count(r) / len(ok), 4) for r in sorted(set(ok))},
    }


def unusable_stop(statuses: list[str], min_usable_fraction: float) -> str | None:
    """Why the round must stop annotating (a one-line cause) after the replies with these
    `statuses` (ok | unparsable | failed), else None: none usable, or a usable share under
    `min_usable_fraction` (0 disables the share rule, never the none-usable rule)."""
    if not statuses:
        return None
    usable = sum(s == "ok" for s in statuses)
    if usable and usable / len(statuses) >= min_usable_fraction:
        return None
    counts = ", ".join(f"{sum(x == s for x in statuses)} {s}"
                       for s in sorted(set(statuses)) if s != "ok")
    return (f"teacher replies unusable: {usable} of {len(statuses)} usable ({counts}; "
            f"teacher.min_usable_fraction={min_usable_fraction:g})")


def raw_excerpt(annotation: Annotation) -> str:
    """One unusable reply as shown in the stop line: its error and the first characters of
    the raw reply, on one line."""
    raw = annotation.raw or ""
    try:  # the turns of a dialogue are stored as a JSON list: show the last reply
        turns = json.loads(raw)
        if isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns):
            raw = turns[-1]
    except ValueError:
        pass
    raw = " ".join(raw.split())
    raw = raw if len(raw) <= RAW_SHOWN_CHARS else raw[:RAW_SHOWN_CHARS] + "..."
    why = f"{annotation.status}: {annotation.error}" if annotation.error else annotation.status
    return f"question {annotation.question_id} ({why}) replied {raw!r}"
