"""Parsing student and teacher text. Never raises: a miss is recorded as a status.

docs/design.md §2.1: steps are the non-empty lines of an explanation; the final answer is read
from a closing `#### <answer>` line and normalised per answer family. Teacher replies, which
real models write in many layouts, are read by `extract_answer` / `teacher_solution` (§2.3).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

ANSWER_MARK = "####"
FAMILIES = ("number", "option", "label", "yesno")
NLI_LABELS = ("entailment", "neutral", "contradiction")

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_CALC_RE = re.compile(r"<<([^<>=]+)=([^<>]+)>>")


@dataclass(frozen=True)
class ParsedAnswer:
    """answer: normalised answer or None; status: ok | no_answer | unparsable."""

    answer: str | None
    status: str
    raw: str | None = None


def split_steps(explanation: str) -> list[str]:
    """Non-empty, stripped lines of an explanation, the `#### answer` line(s) excluded."""
    return [
        line.strip()
        for line in explanation.splitlines()
        if line.strip() and not line.strip().startswith(ANSWER_MARK)
    ]


def split_rationale(solution: str) -> tuple[str, str | None]:
    """GSM8K `answer` field -> (steps joined by newlines, raw text after the last `####`)."""
    steps = split_steps(solution)
    marks = [line for line in solution.splitlines() if line.strip().startswith(ANSWER_MARK)]
    raw = marks[-1].strip()[len(ANSWER_MARK):].strip() if marks else None
    return "\n".join(steps), raw


def normalize_number(raw: str) -> str | None:
    """'1,000' / '$5.50' / '72.' / '3/4' -> canonical number string ('1000', '5.5', '72', '0.75').

    Returns None when no number can be read. Integral values print without a decimal point.
    """
    text = raw.replace(",", "").replace("$", "").replace("%", "").strip()
    match = _NUMBER_RE.search(text)
    if match is None:
        return None
    try:
        value = Fraction(match.group(0))
    except (ValueError, ZeroDivisionError):
        return None
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def normalize_answer(raw: str, family: str = "number") -> str | None:
    """Normalise an answer string for its family (docs/design.md §2.1); None when unreadable."""
    text = raw.strip().strip(".").strip()
    if family == "number":
        return normalize_number(text)
    low = text.lower()
    if family == "option":
        m = re.match(r"^\(?([a-eA-E])\)?(?:[\s).:]|$)", text)
        return m.group(1).upper() if m else None
    if family == "label":
        for label in NLI_LABELS:
            if low.startswith(label):
                return label
        return None
    if family == "yesno":
        if low.startswith("yes"):
            return "yes"
        if low.startswith("no"):
            return "no"
        return None
    raise ValueError(f"unknown answer family {family!r}; expected one of {FAMILIES}")


def parse_answer(text: str, family: str = "number") -> ParsedAnswer:
    """Read the final answer from the last `#### <answer>` occurrence of `text`.

    Returns ParsedAnswer(answer, status): status 'no_answer' when there is no `####`,
    'unparsable' when the text after it cannot be normalised. Never raises.
    """
    idx = text.rfind(ANSWER_MARK)
    if idx < 0:
        return ParsedAnswer(None, "no_answer")
    raw = text[idx + len(ANSWER_MARK):].strip().split("\n", 1)[0].strip()
    answer = normalize_answer(raw, family) if raw else None
    return ParsedAnswer(answer, "ok" if answer is not None else "unparsable", raw)


def parse_probe_answer(continuation: str, family: str = "number") -> str | None:
    """Answer of a probe: the text the student wrote right after the `#### ` cue (first line)."""
    first = continuation.strip().split("\n", 1)[0]
    return normalize_answer(first, family) if first else None


def gsm8k_calculations(rationale: str) -> list[tuple[str, str]]:
    """GSM8K `<<expr=value>>` annotations in order, as (expr, value) string pairs."""
    return [(e.strip(), v.strip()) for e, v in _CALC_RE.findall(rationale)]


def numbers_in(text: str) -> list[str]:
    """Every number in `text`, normalised (commas and `$` stripped)."""
    found = re.findall(r"\d[\d,]*(?:\.\d+)?", text)
    return [n for n in (normalize_number(f) for f in found) if n is not None]


# ---------------------------------------------------------------- teacher replies
# A real teacher model rarely keeps to the `#### N` protocol: it writes prose, markdown,
# LaTeX (`\boxed{42}`), "**Answer:** 42", "The answer is 42." (docs/design.md §2.1, §2.3).
# `extract_answer` reads those; the per-family normalisation stays `normalize_answer`.

ANSWER_RULES = ("hash", "boxed", "answer_is", "answer_label", "last_line")

_MAX_REPLY_CHARS = 50_000  # longer replies are read from their last 50k characters
_MAX_LINES = 400  # only the last 400 lines are searched (a final answer closes a reply)
_MAX_LINE_CHARS = 4000  # and only the last 4000 characters of each line
_LATEX_WRAPPERS = ("text", "textbf", "textit", "mathrm", "mathbf", "mbox", "emph", "operatorname")
_NUM_PIECE = r"[-−]?\s?[$€£]?\s?[-−]?\d[\d,]*(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?\s?%?"
_NUM_LEAD_RE = re.compile(_NUM_PIECE)
# a pure numeric answer: the number, at most two unit words ("42 apples", "$18 per day")
_NUM_PURE_RE = re.compile(
    rf"(?:about|approximately|approx\.?|roughly|~|≈)?\s?{_NUM_PIECE}"
    r"(?:\s+[A-Za-z][A-Za-z.'²³/-]*){0,2}\s?[.!]?", re.IGNORECASE)
# option letters: "(c)", "C", "C)", "C.", "C:", "C) 25"; a bare capital followed by a word is prose
_OPTION_RE = re.compile(r"\(([A-Ea-e])\)|([A-E])(?=$|[).:,]|\s+[-–—:=(\d$])|([a-e])(?=$|\))")
_OPTION_PREFIX_RE = re.compile(r"^(?:option|choice)\s*[:#]?\s*", re.IGNORECASE)
_YESNO_RE = re.compile(r"(yes|no)\b", re.IGNORECASE)
_LABEL_RE = re.compile(r"(entailment|neutral|contradiction)\b", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(
    r"\.(?=\s|$)|[!?;]|\s[-–—]\s|,\s+(?:because|since|as|which|so|and|but|or)\b", re.IGNORECASE)
_LIST_MARK_RE = re.compile(r"^(?:[-*+•]\s+|>\s*)+")
_HEADING_RE = re.compile(r"^#{1,6}\s+")
_HAS_WORD_RE = re.compile(r"\w")
_NUMBERED_HEADING_RE = re.compile(r"^\s*####\s+(?:step\s+)?\d+[.):]\s+[A-Za-z]", re.IGNORECASE)
_CONNECTIVE_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence|finally|overall|in\s+conclusion|in\s+summary|in\s+total|total|"
    r"that\s+means|this\s+means)\b[\s,:]*)+", re.IGNORECASE)
_ANSWER_IS_RE = re.compile(
    r"\b(?:(?:final|correct|right|best|true)\s+)?(?:answer|option|choice|label|relationship|relation)"
    r"(?:\s+to\s+(?:the|this)\s+(?:question|problem))?"
    r"\s+(?:is|would\s+be|will\s+be|should\s+be|must\s+be)\b(?:\s+therefore)?\s*[:=]?\s*(?P<ans>.+)"
    r"|\bfinal\s+answer\s*(?:is\s*)?[:=]\s*(?P<ans2>.+)",
    re.IGNORECASE)
_ANSWER_LABEL_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:(?:final|correct|predicted)\s+)?(?:answer|ans|result|label|prediction)"
    r"\.?\s*(?:\([^)]*\))?"
    r"\s*[:=\-–—]\s*(?P<ans>.*)$", re.IGNORECASE)
_ANSWER_HEADING_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:(?:final|correct)\s+)?(?:answer|ans|result|solution)\.?\s*[:\-–—]?$",
    re.IGNORECASE)


@dataclass(frozen=True)
class _Found:
    answer: str
    rule: str
    line: int  # index in text.splitlines() of the line the answer was read from
    pos: int   # character offset of the answer's marker in the text (`####`, `\boxed`, ...)


def _braced(text: str, start: int, limit: int = 500) -> tuple[str, int] | None:
    """Content of the balanced `{...}` opening at text[start] == '{', and the index after it;
    None when unbalanced within `limit` characters (an answer is never that long)."""
    depth = 0
    for i in range(start, min(len(text), start + limit)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def _unwrap_command(text: str, name: str, arity: int, sep: str = "") -> str:
    """Replace `\\name{a}{b}` by a + sep + b (balanced braces); unbalanced text is left as is."""
    out, i, tag = [], 0, "\\" + name
    while True:
        j = text.find(tag, i)
        if j < 0 or j + len(tag) < len(text) and text[j + len(tag)].isalpha():
            if j < 0:
                out.append(text[i:])
                return "".join(out)
            out.append(text[i:j + len(tag)])
            i = j + len(tag)
            continue
        k, parts = j + len(tag), []
        for _ in range(arity):
            while k < len(text) and text[k] == " ":
                k += 1
            got = _braced(text, k) if k < len(text) and text[k] == "{" else None
            if got is None:
                break
            parts.append(got[0])
            k = got[1]
        if len(parts) != arity:
            out.append(text[i:j + len(tag)])
            i = j + len(tag)
            continue
        out.append(text[i:j])
        out.append(sep.join(parts))
        i = k


def clean_markup(text: str) -> str:
    """Strip markdown and LaTeX wrappers from one line of a teacher reply (docs/design.md §2.1).

    Markdown: `**`, `*`, `_` emphasis, backticks, heading `#`s, list bullets, `>` quotes.
    LaTeX: `$...$`, `\\(...\\)`, `\\[...\\]`, `\\boxed{}`, `\\text{}` (and textbf, mathrm, ...),
    `\\frac{a}{b}` -> `a/b`, `\\,` / `{,}` thousands separators, `\\$`, `\\%`, `^\\circ`. Returns
    the stripped text (the numbers and words themselves are left alone for the normaliser).
    """
    s = text
    for name in ("boxed", "fbox", *_LATEX_WRAPPERS):
        s = _unwrap_command(s, name, 1)
    for name in ("frac", "dfrac", "tfrac"):
        s = _unwrap_command(s, name, 2, "/")
    s = s.replace("{,}", ",").replace("\\,", "").replace("\\!", "").replace("\\;", " ")
    s = s.replace("\\ ", " ").replace("\\%", "%").replace("\\$", "$").replace("\\times", "×")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = re.sub(r"\\(?:left|right|displaystyle|quad|qquad)\b", "", s)
    s = s.replace("$", "").replace("`", "").replace("**", "").replace("__", "")
    s = re.sub(r"(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])", "", s)
    s = re.sub(r"(?<!\w)_(?=\S)|(?<=\S)_(?!\w)", "", s)
    s = s.strip()
    s = _HEADING_RE.sub("", s)
    s = _LIST_MARK_RE.sub("", s)
    s = s.strip()
    while s and (s[0] in "→⇒∴" or unicodedata.category(s[0]) == "So"):  # "✅ 42", "→ 42"
        s = s[1:].lstrip()
    return s


def _cut_sentence(text: str) -> str:
    m = _SENTENCE_END_RE.search(text)
    return text[:m.start()] if m else text


def _read_fragment(fragment: str, family: str, pure: bool, skip_words: int = 0,
                   split_equals: bool = True) -> str | None:
    """The normalised answer a fragment of a reply states, or None.

    pure: the fragment must be only an answer ("42", "$1,200.", "42 apples", "(B)", "Yes.").
    Otherwise the answer must start the fragment's first sentence, after at most `skip_words`
    words ("she has 42 apples", "therefore (C)"); with split_equals a number is read after the
    last `=` ("5 + 3 = 8" -> 8).
    """
    text = fragment.strip()
    if not pure:
        text = _cut_sentence(text)
    text = text.strip().strip(":").strip()
    if family == "number":
        text = text.replace("−", "-")
        if split_equals and "=" in text:
            text = text.rsplit("=", 1)[1]
    elif family == "option":
        text = _OPTION_PREFIX_RE.sub("", text)
    text = text.strip().lstrip("=:→⇒∴").strip()
    if not text:
        return None
    if pure:
        return _read_pure(text, family)
    words = text.split()
    for n in range(min(skip_words, max(len(words) - 1, 0)) + 1):
        if n and any(ch.isdigit() for ch in words[n - 1]):
            break  # only prose words may come before the answer
        rest = " ".join(words[n:])
        if family == "option":
            rest = _OPTION_PREFIX_RE.sub("", rest)
        got = _read_lead(rest, family)
        if got is not None:
            return got
    return None


def _read_pure(text: str, family: str) -> str | None:
    if family == "number":
        if _NUM_PURE_RE.fullmatch(text) is None:
            return None
        m = _NUM_LEAD_RE.search(text)
        return normalize_answer(m.group(0).replace(" ", ""), "number") if m else None
    if family == "option":
        m = _OPTION_RE.match(text)
        if m is None or (len(text) > m.end() and len(text) > 60):
            return None
        return normalize_answer(f"({next(g for g in m.groups() if g)})", "option")
    pattern = _LABEL_RE if family == "label" else _YESNO_RE if family == "yesno" else None
    if pattern is None:
        return None
    m = pattern.match(text)
    if m is None or text[m.end():].strip(" .!") != "":
        return None
    return normalize_answer(m.group(1), family)


def _read_lead(text: str, family: str) -> str | None:
    if family == "number":
        m = _NUM_LEAD_RE.match(text)
        return normalize_answer(m.group(0).replace(" ", ""), "number") if m else None
    if family == "option":
        m = _OPTION_RE.match(text)
        return normalize_answer(f"({next(g for g in m.groups() if g)})", "option") if m else None
    pattern = _LABEL_RE if family == "label" else _YESNO_RE if family == "yesno" else None
    m = pattern.match(text) if pattern is not None else None
    return normalize_answer(m.group(1), family) if m else None


def _line_starts(text: str) -> list[int]:
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _line_of(starts: list[int], pos: int) -> int:
    lo = 0
    for i, s in enumerate(starts):
        if s <= pos:
            lo = i
        else:
            break
    return lo


def _rule_hash(text: str, lines: list[str], starts: list[int], family: str) -> _Found | None:
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        line = lines[idx]
        if ANSWER_MARK not in line or _NUMBERED_HEADING_RE.match(line):
            continue
        col = line.rfind(ANSWER_MARK)
        content = clean_markup(line[col + len(ANSWER_MARK):].lstrip("#"))
        phrase = _ANSWER_IS_RE.search(content)
        got = (_read_fragment(content, family, pure=True)
               or (_read_fragment(phrase.group("ans") or phrase.group("ans2"), family, False, 4)
                   if phrase else None)
               or _read_fragment(content, family, pure=False))
        if got is not None:
            return _Found(got, "hash", idx, starts[idx] + col)
    return None


def _rule_boxed(text: str, lines: list[str], starts: list[int], family: str) -> _Found | None:
    found = [m.start() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for pos in reversed(found[-20:]):  # the last few: a reply's final answer is near its end
        got = _braced(text, text.index("{", pos))
        if got is None:
            continue
        content = clean_markup(got[0])
        answer = (_read_fragment(content, family, pure=True)
                  or _read_fragment(content, family, pure=False))
        if answer is not None:
            return _Found(answer, "boxed", _line_of(starts, pos), pos)
    return None


def _rule_phrases(text: str, lines: list[str], starts: list[int], family: str) -> _Found | None:
    """answer_is ("the final answer is N") and answer_label ("Answer: N"): the later one wins."""
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        cleaned = clean_markup(lines[idx]) if lines[idx].strip() else ""
        if not cleaned:
            continue
        best: _Found | None = None
        label = _ANSWER_LABEL_RE.match(_CONNECTIVE_RE.sub("", cleaned))
        if label is not None:
            got = _read_fragment(label.group("ans"), family, pure=False, skip_words=4)
            if got is not None:
                best = _Found(got, "answer_label", idx, starts[idx])
        for m in reversed(list(_ANSWER_IS_RE.finditer(cleaned))):
            got = _read_fragment(m.group("ans") or m.group("ans2") or "", family, False, 4)
            if got is not None:
                if best is None:
                    best = _Found(got, "answer_is", idx, starts[idx] + m.start())
                break
        if best is not None:
            return best
    return None


def _rule_last_line(text: str, lines: list[str], starts: list[int], family: str) -> _Found | None:
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        cleaned = clean_markup(lines[idx]) if lines[idx].strip() else ""
        if cleaned:
            got = _read_fragment(cleaned, family, pure=True, split_equals=False)
            return _Found(got, "last_line", idx, starts[idx]) if got is not None else None
    return None


_RULES = (_rule_hash, _rule_boxed, _rule_phrases, _rule_last_line)


def _find(text: object, family: str) -> _Found | None:
    if not isinstance(text, str) or not text.strip() or family not in FAMILIES:
        return None
    if len(text) > _MAX_REPLY_CHARS:
        text = text[-_MAX_REPLY_CHARS:]
    lines = text.splitlines()
    # a line longer than _MAX_LINE_CHARS is read from its end; starts[i] is the text offset
    # of what is left of line i
    starts = [s + max(0, len(line) - _MAX_LINE_CHARS) for s, line in zip(_line_starts(text), lines)]
    lines = [line[-_MAX_LINE_CHARS:] for line in lines]
    for rule in _RULES:
        try:
            found = rule(text, lines, starts, family)
        except Exception:  # noqa: BLE001 - a parser of untrusted text must never raise
            found = None
        if found is not None:
            return found
    return None


def extract_answer(text: str | None, family: str = "number") -> tuple[str | None, str | None]:
    """Read the final answer of a TEACHER reply written in any common layout.

    Source: docs/design.md §2.1 (answers, families) and §2.3 (teacher replies). `text` is one
    reply (any string; None, empty, non-str or huge input is fine); `family` is one of
    FAMILIES. Rules, tried in this order, the first that reads an answer wins:

    1. `hash`: the last `#### N` line (a numbered markdown heading `#### 1. Step` is skipped);
       the oracle's replies and the student format, read exactly as `parse_answer` reads them.
    2. `boxed`: the last `\\boxed{N}` (nested braces such as `\\boxed{\\frac{1}{2}}` handled).
    3. `answer_is` / `answer_label`: "the (final) answer is N" and its variants ("So the answer
       is: **42**", "Therefore, the final answer is $42$.", "Final answer: 42", "The correct
       option is (C)"), or a line "Answer: N" / "**Answer:** N" / "Ans: N". These two are one
       tier: the statement nearest the end of the reply wins.
    4. `last_line`: the last non-empty line, if it is only an answer ("42", "**$1,200**",
       "42 apples", "(B)", "Entailment.", "Yes.").

    Markdown and LaTeX wrappers are stripped first (`clean_markup`) and the answer is
    normalised with `normalize_answer` for the family. Returns (answer, rule): the normalised
    answer and the rule's name from ANSWER_RULES, or (None, None). Never raises.
    """
    found = _find(text, family)
    return (found.answer, found.rule) if found else (None, None)


def is_answer_line(line: str, family: str = "number") -> bool:
    """True when a line only states a final answer ("#### 42", "**Answer:** 42", "\\boxed{42}",
    "So the final answer is $42$.", "42", "Final Answer:") and holds no reasoning."""
    try:
        raw = line.strip()
        if raw.startswith(ANSWER_MARK):
            return True
        cleaned = clean_markup(raw)
        if not cleaned:
            return False
        if _ANSWER_HEADING_RE.match(cleaned):
            return True
        body = _CONNECTIVE_RE.sub("", cleaned)
        label = _ANSWER_LABEL_RE.match(body)
        if label is not None:
            body = label.group("ans")
        else:
            m = _ANSWER_IS_RE.match(re.sub(r"^(?:the|my|our)\s+", "", body, flags=re.IGNORECASE))
            if m is not None:
                body = m.group("ans") or m.group("ans2") or ""
        return _read_fragment(body, family, pure=True, split_equals=False) is not None
    except Exception:  # noqa: BLE001
        return False


def teacher_solution(text: str | None, family: str = "number") -> tuple[list[str], str | None, str | None]:
    """A teacher reply -> (reasoning steps, normalised answer or None, rule name or None).

    The training target is rebuilt in the student's format whatever the teacher's layout
    (docs/design.md §2.1): with the `hash` rule the steps are the lines before the `####`, as
    before; otherwise the lines up to the one the answer was read from, less any trailing
    lines that only state the answer ("**Answer:** 42", "\\boxed{42}", "Final Answer:", a lone
    `\\]`). Other lines are kept verbatim. Never raises.
    """
    if not isinstance(text, str):
        return [], None, None
    found = _find(text, family)
    if found is None:
        return split_steps(text), None, None
    if found.rule == "hash":
        return split_steps(text[:found.pos]), found.answer, found.rule
    kept = [line for line in text.splitlines()[:found.line + 1]
            if line.strip() not in ("<think>", "</think>")]
    while kept and (not _HAS_WORD_RE.search(clean_markup(kept[-1]))
                    or is_answer_line(kept[-1], family)):
        kept.pop()  # a trailing answer line, `\]`, `---` or other bare markup
    return split_steps("\n".join(kept)), found.answer, found.rule
