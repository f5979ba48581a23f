"""The reply as lines: where an answer was read (`AnswerSpan`), the limits a reply is read
within, line offsets, and the protocol echoes no rule reads (placeholders such as `<answer>`,
runs of enumerating `####` lines). docs/design.md §2.3 (teacher replies).

A reply is untrusted text: one longer than MAX_REPLY_CHARS is read from its end, and only its
last MAX_LINES lines, and the last MAX_LINE_CHARS characters of each line, are searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from elad_core.explanations.answers.markup import clean_markup

MAX_REPLY_CHARS = 50_000  # longer replies are read from their last 50k characters
MAX_LINES = 400  # only the last 400 lines are searched (a final answer closes a reply)
MAX_LINE_CHARS = 4000  # and only the last 4000 characters of each line
HAS_WORD_RE = re.compile(r"\w")
# a protocol placeholder echoed instead of an answer: "<answer>", "[answer]", "<number>",
# "{final answer}", "<yes or no>", "(<letter>)"
_PLACEHOLDER_RE = re.compile(
    r"[<\[{]\s*(?:[A-Za-z][\w ,/'-]{0,50}?\s)?(?:answer|number|numeral|digit|letter|option|choice|"
    r"label|result|value|yes\s*(?:or|/)\s*no|entailment|insert|your\s+\w+)\b[\w ,/'-]{0,50}[>\]}]",
    re.IGNORECASE)
_HASH_VALUE_RE = re.compile(r"^\s*####\s*(?P<v>.*?)\s*$")


@dataclass(frozen=True)
class AnswerSpan:
    """Where an answer was read: answer (normalised), rule (one of ANSWER_RULES), line (index
    in text.splitlines() of the reply as read) and pos (character offset of the answer's marker
    (`####`, `\\boxed`, ...) in that text)."""

    answer: str
    rule: str
    line: int
    pos: int


def line_starts(text: str) -> list[int]:
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def line_of(starts: list[int], pos: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last line starting at or before pos
        mid = (lo + hi + 1) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid - 1
    return lo


def echo_lines(lines: list[str]) -> set[int]:
    """Indices of protocol-echo lines: `#### <answer>`-style placeholder lines and runs of
    enumerating `####` lines (`#### 1`, `#### 2`, `#### 3` ..., or any run right after a
    placeholder line) - a small model copying the protocol, not answering."""
    echo: set[int] = set()
    hashes = []  # (line index, value text) of `####` lines, in order
    for i, line in enumerate(lines):
        m = _HASH_VALUE_RE.match(line)
        if m is not None:
            hashes.append((i, m.group("v")))
            if _PLACEHOLDER_RE.search(m.group("v")) or not m.group("v").strip("#").strip():
                echo.add(i)
    # runs of `####` lines separated only by blank lines
    runs: list[list[tuple[int, str]]] = []
    for i, v in hashes:
        if runs and all(not lines[k].strip() for k in range(runs[-1][-1][0] + 1, i)):
            runs[-1].append((i, v))
        else:
            runs.append([(i, v)])
    for run in runs:
        ints = [int(v) if re.fullmatch(r"\d{1,6}", v) else None for _, v in run]
        after_placeholder = run[0][0] in echo
        a = 0
        while a < len(run):  # maximal counting segments k, k+1, k+2, ... (one pass)
            b = a
            while b + 1 < len(run) and ints[b] is not None and ints[b + 1] == ints[b] + 1:
                b += 1
            if ints[a] is not None and (b - a >= 2 or (after_placeholder and b > a)):
                echo.update(i for i, _ in run[a:b + 1])
            a = b + 1
        if after_placeholder and len(run) >= 3:
            echo.update(i for i, _ in run)  # `#### <answer>` then `#### 1` `#### 7` `#### 3` ...
    # a reply stopped at its token limit inside a repeated `#### 25` line: "#### 2" at its very
    # end is a cut-off copy of the line before, not an answer
    if len(hashes) >= 2 and hashes[-1][0] == len(lines) - 1:
        (_, prev), (i, last) = hashes[-2], hashes[-1]
        if last and prev != last and prev.startswith(last):
            echo.add(i)
    return echo


def strip_placeholders(s: str) -> str:
    return _PLACEHOLDER_RE.sub(" ", s) if ("<" in s or "[" in s or "{" in s) else s


def content_lines_backwards(lines: list[str], skip: set[int]):
    """Indices of non-empty lines with some word in them, from the end, echo lines skipped."""
    for idx in range(len(lines) - 1, max(len(lines) - MAX_LINES, 0) - 1, -1):
        if idx in skip or not lines[idx].strip():
            continue
        if HAS_WORD_RE.search(clean_markup(lines[idx])):
            yield idx
