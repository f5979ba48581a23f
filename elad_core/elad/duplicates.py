"""Repeated questions in real datasets (issue #15, docs/design.md §4).

Public sets repeat questions: one arithmetic word-problem set holds 20 repeats among 600,
each with the same answer. A question is identified by `Example.id` (a hash of its
lower-cased, whitespace-collapsed text, elad_core.elad.gsm8k.question_id), so copies that
differ only in case or spacing are the same question.

* Copies with the same (normalised) answer are merged: the first is kept, the rest counted.
* Copies with different answers are an error naming both lines, unless `data.on_duplicate`
  says otherwise: `first` keeps the first copy, `drop` removes every copy of that question.
Either way the counts go to the pre-flight's console line and to summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from elad_core.explanations.records import Example
from elad_core.errors import DataError

POLICIES = ("error", "first", "drop")


@dataclass(frozen=True)
class DuplicateReport:
    """What merging did to one split. merged: identical copies removed (same question, same
    answer, also those of a conflicting question); conflicting: questions whose copies disagree
    on the answer; removed: the other rows removed for those conflicts (policy first: the
    later copies with another answer; drop: every copy)."""

    merged: int = 0
    conflicting: int = 0
    removed: int = 0

    def describe(self, name: str, policy: str) -> str | None:
        """One console line about split `name`, or None when nothing was merged."""
        if not (self.merged or self.conflicting):
            return None
        parts = [f"merged {self.merged} repeated question(s) with the same answer"]
        if self.conflicting:
            parts.append(f"{self.conflicting} question(s) with conflicting answers "
                         f"(data.on_duplicate={policy}: {self.removed} row(s) removed)")
        return f"{name}: " + "; ".join(parts)


def merge_duplicates(examples: list[Example], locations: list[str],
                     policy: str = "error") -> tuple[list[Example], DuplicateReport]:
    """`examples` (file order) with repeated questions merged; locations[i] names row i
    ("file:line"). Raises DataError at the first conflicting copy when policy is "error",
    ValueError for an unknown policy."""
    if policy not in POLICIES:
        raise ValueError(f"on_duplicate must be one of {POLICIES}, got {policy!r}")
    first: dict[str, int] = {}
    keep: list[bool] = []
    conflicted: set[str] = set()
    merged = 0
    for i, e in enumerate(examples):
        j = first.get(e.id)
        if j is None:
            first[e.id] = i
            keep.append(True)
            continue
        keep.append(False)
        if examples[j].answer == e.answer:
            merged += 1
            continue
        if policy == "error":
            there = _relative(locations[j], locations[i])
            raise DataError(
                f"{locations[i]}: field 'question' duplicates {there} (id {e.id}) with "
                f"another answer ({e.answer!r}, there {examples[j].answer!r}); fix the file or "
                "set data.on_duplicate: first (keep the first copy) or drop (drop every copy)")
        conflicted.add(e.id)
    if policy == "drop":
        out = [e for e, k in zip(examples, keep, strict=True) if k and e.id not in conflicted]
    else:
        out = [e for e, k in zip(examples, keep, strict=True) if k]
    return out, DuplicateReport(merged, len(conflicted), len(examples) - len(out) - merged)



def _relative(loc: str, of: str) -> str:
    """"line N" when `loc` is "file:N" in the same file as `of`, else `loc`."""
    file, _, line = loc.rpartition(":")
    return f"line {line}" if file and of.rpartition(":")[0] == file and line.isdigit() else loc
