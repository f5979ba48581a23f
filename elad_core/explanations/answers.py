"""Reading the final answer of a model's reply, whatever its phrasing. Never raises.

docs/design.md §2.1 (answers and answer families) and §2.3 (teacher replies). Four answer
families: "number" (GSM8K), "option" (A-E, AQuA / CommonsenseQA), "label" (entailment /
neutral / contradiction, e-SNLI / ANLI) and "yesno" (StrategyQA).

Two readers:

- `parse_answer`: the student's trained format only, the last `#### <answer>` line (what
  lm-evaluation-harness's GSM8K "strict-match" filter reads).
- `extract_answer` (and `flexible_answer`, `find_answer`): any reply. Strict rules first (an
  explicit answer statement: `#### N`, `\\boxed{N}`, "the answer ... is N", "Answer: N", a last
  line that is only an answer; the statement nearest the end of the reply wins), then a
  family-aware **flexible** rule in the manner of lm-evaluation-harness's GSM8K
  "flexible-extract" filter (regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match) and of the
  Qwen2.5-Math evaluator (last number of the prediction): the last candidate of the family in
  the reply's final statement, never one copied from the question.

A reply is untrusted text: None, non-str, huge or binary input gives (None, None).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

ANSWER_MARK = "####"
FAMILIES = ("number", "option", "label", "yesno")
NLI_LABELS = ("entailment", "neutral", "contradiction")
OPTION_LETTERS = "ABCDE"

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


# ---------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class ParsedAnswer:
    """answer: normalised answer or None; status: ok | no_answer | unparsable."""

    answer: str | None
    status: str
    raw: str | None = None


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
    """Read the final answer from the last `#### <answer>` occurrence of `text` (the student's
    trained format; the "strict" reading of lm-evaluation-harness's GSM8K task).

    Returns ParsedAnswer(answer, status): status 'no_answer' when there is no `####`,
    'unparsable' when the text after it cannot be normalised. Never raises.
    """
    if not isinstance(text, str):
        return ParsedAnswer(None, "no_answer")
    idx = text.rfind(ANSWER_MARK)
    if idx < 0:
        return ParsedAnswer(None, "no_answer")
    raw = text[idx + len(ANSWER_MARK):].strip().split("\n", 1)[0].strip()
    try:
        answer = normalize_answer(raw, family) if raw else None
    except ValueError:
        answer = None
    return ParsedAnswer(answer, "ok" if answer is not None else "unparsable", raw)


# ---------------------------------------------------------------- markup
_LATEX_WRAPPERS = ("text", "textbf", "textit", "mathrm", "mathbf", "mbox", "emph", "operatorname")
_LIST_MARK_RE = re.compile(r"^(?:[-*+•]\s+|>\s*)+")
_HEADING_RE = re.compile(r"^#{1,6}\s+")


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
    """Strip markdown and LaTeX wrappers from one line of a reply (docs/design.md §2.1).

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
    s = s.replace("\\cdot", "×").replace("\\div", "÷")
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


# ---------------------------------------------------------------- answer fragments
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
_EXPRESSION_LEAD_RE = re.compile(
    r"\s*[-$€£]?\s?\d[\d,]*(?:\.\d+)?(?:\s*[*×x÷+^]\s*|\s+[/-]\s+)[-$€£(]?\s?\d")
_PROSE_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*,?")
_NEGATION_WORD_RE = re.compile(r"(?:not|no|never|neither|nor|hardly|unlikely|\w+n[’']t),?", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(
    r"\.(?=\s|$)|[!?;]|\s[-–—]\s|,\s+(?:because|since|as|which|so|and|but|or)\b", re.IGNORECASE)


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
            if _EXPRESSION_LEAD_RE.match(text):
                return None  # "= 3 * 4.": an expression still to be worked out, not a value
    elif family == "option":
        text = _OPTION_PREFIX_RE.sub("", text)
    if family != "number":
        text = re.sub(r"[\"“”‘’]|(?<!\w)'|'(?!\w)", "", text)  # 'the letter "E".' -> E
    text = text.strip().lstrip("=:→⇒∴").strip()
    if not text:
        return None
    if pure:
        return _read_pure(text, family)
    words = text.split()
    for n in range(min(skip_words, max(len(words) - 1, 0)) + 1):
        if n and (not _PROSE_WORD_RE.fullmatch(words[n - 1]) or _NEGATION_WORD_RE.fullmatch(words[n - 1])):
            break  # only prose words may come before the answer, and no negation ("not 5")
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
        if len(set(re.findall(r"(?<![\w'’])\(?([A-E])\)", text))) >= 2:
            return None  # "(A) bank (B) library": choices listed, not one stated
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


# ---------------------------------------------------------------- strict rules
STRICT_RULES = ("hash", "boxed", "answer_is", "answer_label", "last_line")
ANSWER_RULES = (*STRICT_RULES, "flexible")

_MAX_REPLY_CHARS = 50_000  # longer replies are read from their last 50k characters
_MAX_LINES = 400  # only the last 400 lines are searched (a final answer closes a reply)
_MAX_LINE_CHARS = 4000  # and only the last 4000 characters of each line
_HAS_WORD_RE = re.compile(r"\w")
_NUMBERED_HEADING_RE = re.compile(r"^\s*####\s+(?:step\s+)?\d+[.):]\s+[A-Za-z]", re.IGNORECASE)
_CONNECTIVE_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence|finally|overall|in\s+conclusion|in\s+summary|in\s+total|total|"
    r"that\s+means|this\s+means)\b[\s,:]*)+", re.IGNORECASE)
# "answer" (or option / choice / label ...), then ANY few words or a parenthetical ("to this
# question", "(in dollars)", "to how many eggs she sells"), then the verb; no sentence break
# and no clause of its own (a pronoun subject: "the answer we need is" is fine, "to find the
# answer we compute x, which is" is not: the gap holds no comma and at most 8 words)
_GAP = r"(?:\s*\([^()\n]{0,60}\))?(?:\s+(?!(?:is|was|would|will|should|must|=)\b)[^\s,.;:!?()=]+){0,8}?(?:\s*\([^()\n]{0,60}\))?"
_VERB = r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=)"
# the nouns that announce an answer, per family ("the correct option is (C)", "the relationship
# is neutral"); every family's answer can be announced as "the answer"
_ANSWER_NOUNS = {"number": "answer", "option": "answer|option|choice",
                 "label": "answer|label|relationship|relation", "yesno": "answer"}


def _answer_is_re(nouns: str) -> re.Pattern:
    return re.compile(
        rf"\b(?:(?:final|correct|right|best|true)\s+)?(?:{nouns})" + _GAP + r"\s+" + _VERB
        + r"(?![\w])(?:\s+(?:therefore|then|simply|clearly|actually))?\s*[:=]?\s*(?P<ans>.+)"
        r"|\b(?:final\s+)?answer\s*(?:\([^()\n]{0,60}\))?\s*(?:is\s*)?[:=]\s*(?P<ans2>.+)",
        re.IGNORECASE)


_ANSWER_IS_RES = {family: _answer_is_re(nouns) for family, nouns in _ANSWER_NOUNS.items()}
_ANSWER_IS_RE = _answer_is_re("answer|option|choice|label|relationship|relation")
_ANSWER_LABEL_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:[A-Za-z]+\s+){0,2}?(?:answer|ans|result|label|prediction)"
    r"\.?\s*(?:\([^)]*\))?"
    r"\s*[:=\-–—]\s*(?P<ans>.*)$", re.IGNORECASE)
_ANSWER_HEADING_RE = re.compile(
    r"^(?:(?:the|my|our)\s+)?(?:(?:final|correct)\s+)?(?:answer|ans|result|solution)\.?\s*[:\-–—]?$",
    re.IGNORECASE)
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


def _line_starts(text: str) -> list[int]:
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _line_of(starts: list[int], pos: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last line starting at or before pos
        mid = (lo + hi + 1) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _echo_lines(lines: list[str]) -> set[int]:
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


_HASH_TAG_RE = re.compile(r"^(?:\[[^\]\n]{0,30}\]|[A-Za-z][A-Za-z ]{0,20})\s*:\s*(?=\S)")


def _strip_placeholders(s: str) -> str:
    return _PLACEHOLDER_RE.sub(" ", s) if ("<" in s or "[" in s or "{" in s) else s


def _rule_hash(lines: list[str], starts: list[int], family: str, skip: set[int]) -> AnswerSpan | None:
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        line = lines[idx]
        if idx in skip or ANSWER_MARK not in line or _NUMBERED_HEADING_RE.match(line):
            continue
        col = line.rfind(ANSWER_MARK)
        content = clean_markup(_strip_placeholders(line[col + len(ANSWER_MARK):].lstrip("#")))
        for _ in range(2):  # "#### [simplify]: 0.75", "#### simplify: Answer: 0.75"
            content = _HASH_TAG_RE.sub("", content, count=1)
        phrase = _ANSWER_IS_RES[family].search(content)
        got = (_read_fragment(content, family, pure=True)
               or (_read_fragment(phrase.group("ans") or phrase.group("ans2"), family, False, 4)
                   if phrase else None)
               or _read_fragment(content, family, pure=False))
        if got is not None:
            return AnswerSpan(got, "hash", idx, starts[idx] + col)
    return None


def _rule_boxed(text: str, starts: list[int], family: str, skip: set[int]) -> AnswerSpan | None:
    found = [m.start() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for pos in reversed(found[-20:]):  # the last few: a reply's final answer is near its end
        got = _braced(text, text.index("{", pos))
        if got is None or _line_of(starts, pos) in skip:
            continue
        content = clean_markup(_strip_placeholders(got[0]))
        answer = (_read_fragment(content, family, pure=True)
                  or _read_fragment(content, family, pure=False))
        if answer is not None:
            return AnswerSpan(answer, "boxed", _line_of(starts, pos), pos)
    return None


def _overlapping(regex: re.Pattern, text: str, limit: int = 50) -> list[re.Match]:
    """Every match of `regex` starting at a different place ("The answer is: The answer is:
    (C)" holds two), the first `limit`."""
    out, pos = [], 0
    while len(out) < limit:
        m = regex.search(text, pos)
        if m is None:
            return out
        out.append(m)
        pos = m.start() + 1
    return out


def _read_statement(fragment: str, family: str, options: dict[str, str]) -> str | None:
    """The answer an answer statement gives after its verb or colon: `_read_fragment` (up to
    four prose words first), else, for options with the question's choices, the one option
    its first sentence names by its text ("The answer is dense forest." -> E)."""
    got = _read_fragment(fragment, family, False, 4)
    if got is None and family == "option" and options:
        named = set(_option_candidates(_cut_first(fragment)[:200], options, by_text=True))
        got = named.pop() if len(named) == 1 else None
    return got


def _rule_phrases(lines: list[str], starts: list[int], family: str, skip: set[int],
                  options: dict[str, str] | None = None) -> AnswerSpan | None:
    """answer_is ("the final answer (in dollars) is N") and answer_label ("Answer: N", also after
    a sentence on the same line), the later one wins; "Answer:" alone on a line is read from the
    next non-empty line."""
    options = options or {}
    nxt: str | None = None  # the next non-empty cleaned line below idx
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        if idx in skip:
            continue
        cleaned = clean_markup(_strip_placeholders(lines[idx])) if lines[idx].strip() else ""
        if not cleaned:
            continue
        best: AnswerSpan | None = None
        sentences = _sentences(cleaned) or [cleaned]
        for k, sentence in enumerate(reversed(sentences)):
            body = _CONNECTIVE_RE.sub("", sentence)
            label = _ANSWER_LABEL_RE.match(body)
            if label is not None and label.group("ans").strip():
                ans = label.group("ans")
                got = _read_statement(ans, family, options)
                if got is not None and not _hedged(ans, family):
                    best = AnswerSpan(got, "answer_label", idx, starts[idx])
                    break
            elif k == 0 and nxt is not None and _ANSWER_HEADING_RE.match(body):
                got = _read_fragment(nxt, family, pure=True)  # "**Answer:**\n42" / "Answer:\n- (B)"
                if got is not None:
                    best = AnswerSpan(got, "answer_label", idx, starts[idx])
                    break
        for m in reversed(_overlapping(_ANSWER_IS_RES[family], cleaned)):
            fragment = m.group("ans") or m.group("ans2") or ""
            got = _read_statement(fragment, family, options)
            if got is not None and _hedged(fragment, family):
                break  # "the answer is both a contradiction and an entailment": no single one
            if got is not None:
                if best is None:
                    best = AnswerSpan(got, "answer_is", idx, starts[idx] + m.start())
                break
        if best is not None:
            return best
        nxt = cleaned
    return None


_OPTION_LINE_RE = re.compile(r"^\(?([A-E])[).:]\s")


def _rule_last_line(lines: list[str], starts: list[int], family: str,
                    skip: set[int]) -> AnswerSpan | None:
    found: AnswerSpan | None = None
    for idx in _content_lines_backwards(lines, skip):
        cleaned = clean_markup(lines[idx])
        if _is_closer(cleaned):
            continue
        got = _read_fragment(cleaned, family, pure=True, split_equals=False)
        if got is None:
            return None
        found = AnswerSpan(got, "last_line", idx, starts[idx])
        break
    if found is None or family != "option":
        return found
    # an option line inside a listing of the choices ("A) harder", "B) anguish", ...) is not an
    # answer: another option letter opens a line of the same paragraph, just above
    for k in range(found.line - 1, max(found.line - 6, -1), -1):
        if not lines[k].strip():
            break
        above = _OPTION_LINE_RE.match(clean_markup(lines[k]))
        if above and above.group(1) != found.answer:
            return None
    return found


def _content_lines_backwards(lines: list[str], skip: set[int]):
    """Indices of non-empty lines with some word in them, from the end, echo lines skipped."""
    for idx in range(len(lines) - 1, max(len(lines) - _MAX_LINES, 0) - 1, -1):
        if idx in skip or not lines[idx].strip():
            continue
        if _HAS_WORD_RE.search(clean_markup(lines[idx])):
            yield idx


# ---------------------------------------------------------------- the flexible rule
# A closing remark addressed to the reader carries no answer: it is passed over when looking
# for the final statement ("I hope this helps!", "Let me know if ...", "Good luck!").
_CLOSER_RE = re.compile(
    r"^(?:i\s+hope|hope\s+(?:this|that|it)|let\s+me\s+know|feel\s+free|if\s+you\s+(?:have|need|want)|"
    r"good\s+luck|happy\s+\w+ing|thanks?\b|thank\s+you|enjoy|please\s+(?:let|feel|note)|"
    r"is\s+there\s+anything|do\s+you\s+have|have\s+a\s+(?:great|good|nice)|cheers|best\s+regards|"
    r"glad\s+(?:i|to)|you'?re\s+welcome|any\s+(?:other|more|further)\s+questions)", re.IGNORECASE)
# sentence ends: '.', '!', '?' followed by space or end (not a decimal point), ';' and newlines
_SPLIT_SENTENCES_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|(?<=;)\s+")
_STEP_MARK_RE = re.compile(
    r"^\s*(?:(?:step|part)\s*\d+\s*[:.)-]?|\(?\d{1,2}[.)](?=\s)|\(?[ivx]{1,4}[.)](?=\s))\s*",
    re.IGNORECASE)
_FLEX_NUMBER_RE = re.compile(r"(?<![\w.])-?[$€£]?\s?\d(?:[\d,]*\d)?(?:\.\d+)?(?:\s?/\s?\d+)?%?(?![\w])")
_OPTION_FLEX_RE = re.compile(
    r"[(\[]([A-Ea-e])[)\]]"                                     # (C), [C]
    r"|(?<![\w'’])([A-E])\)"                                   # C)
    r"|\b(?i:option|choice|answer)\s*(?i:is\s*)?:?\s*\(?([A-E])\b(?![-'’]\w)(?!\s+[a-z])"  # option C
    r"|^\s*([A-E])\s*[.:]?\s*$")                               # a statement that is only "C."
# "(C) fruit market is not applicable", "not (B)": a rejected option
_OPTION_REJECTED_RE = re.compile(
    r"^[^.;,]{0,40}?\b(?:is|are|was|would\s+be|seems?)\s+(?:not|n[o']t|incorrect|wrong|"
    r"unlikely|irrelevant|inapplicable)\b", re.IGNORECASE)
_LABEL_PREDICATE_RE = re.compile(
    r"(?:^\W*|\b(?:is|are|was|were|be|being|been|becomes?|remains?|seems?|'s)\s+(?:[\w-]+\s+){0,2}?)"
    r"(?:an?\s+)?(?:[\w-]+\s+)?$", re.IGNORECASE)
_LABEL_FLEX_RE = re.compile(
    r"\b(entailment|entails?|entailed|neutral|contradiction|contradicts?|contradictory|contradicted)\b",
    re.IGNORECASE)
_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|neither|nor|cannot|can't|isn't|doesn't|don't|didn't|wasn't|aren't|"
    r"unlikely|hardly|without|opposite|rather\s+than|instead\s+of)\b(?:\W+\w+){0,2}\W*$",
    re.IGNORECASE)
_YESNO_FLEX_RE = re.compile(
    r"(?:^|(?<=[:,;(\"']))\s*(yes|no)\b(?=\s*(?:[,.!;:)\"'\-–—]|$))"   # "No, ..." / "So, yes."
    r"|^\s*(yes)\b"                                              # "Yes it can."
    r"|\b(?:answer|response)\b[^.?!]{0,40}?\b(?:is|was|would\s+be)\s*:?\s*[\"'(]?(yes|no)\b"
    r"|\banswer\s*:\s*[\"'(]?(yes|no)\b",
    re.IGNORECASE)
_YESNO_ECHO_RE = re.compile(r"\byes\s*(?:or|/)\s*no\b|\bno\s*(?:or|/)\s*yes\b", re.IGNORECASE)
# a sentence that announces work still to do, not a result
_FORWARD_RE = re.compile(
    r"^\W*(?:(?:now|next|first|then|finally|so)\b[\s,]*)?(?:let'?s|let\s+(?:us|me)|next\b|"
    r"to\s+(?:find|calculate|compute|determine|solve|get|work\s+out|figure\s+out)\b|"
    r"we\s+(?:need|can|will|must|have\s+to|should|are\s+going\s+to)\b|i\s+will\b|i'?ll\b|"
    r"i\s+need\b)", re.IGNORECASE)
_CONDITIONAL_RE = re.compile(r"^\s*(?:if|when|whether|suppose|assuming|unless)\b", re.IGNORECASE)
_QUOTE_OPEN_RE = re.compile(r"^\s*(?:premise|hypothesis|question|options?|answer\s+choices)\s*:",
                            re.IGNORECASE)


def _is_closer(sentence: str) -> bool:
    s = sentence.strip().lstrip("*_>#- ").strip()
    return bool(_CLOSER_RE.match(s)) or s.endswith("?")


def _sentences(line: str) -> list[str]:
    return [s.strip() for s in _SPLIT_SENTENCES_RE.split(line) if s.strip()]


def _question_numbers(question: str | None) -> set[str]:
    if not isinstance(question, str) or not question:
        return set()
    out = set()
    for m in _FLEX_NUMBER_RE.finditer(question[:_MAX_REPLY_CHARS]):
        n = normalize_number(m.group(0).replace(" ", ""))
        if n is not None:
            out.add(n)
    return out


def _question_options(question: str | None) -> dict[str, str]:
    """Option texts written into the question ("(A) bank (B) library ...") -> letter."""
    if not isinstance(question, str) or "(" not in question:
        return {}
    out = {}
    for m in re.finditer(r"\(([A-E])\)\s*([^()\n]*?)\s*(?=\([A-E]\)|$|\n)", question[:20_000]):
        text = m.group(2).strip().strip(".,;").strip().lower()
        if len(text) >= 3 and any(ch.isalpha() for ch in text):
            out[text] = m.group(1)
    return out


_OPERATOR_BEFORE_RE = re.compile(r"(?:[+*×÷^]|\s[/-])\s*\(?$")
_OPERATOR_AFTER_RE = re.compile(r"\s*\)?\s*(?:[+*×÷^=]|[/-]\s)")


def _number_candidates(sentence: str, qnums: set[str]) -> list[str]:
    """Numbers a statement gives, last one last, less those copied from the question (a number
    of the question counts only as an `= N` result); [] when none is left: the statement gives
    no number or only restates the question's data."""
    body = _STEP_MARK_RE.sub("", sentence).replace("−", "-")
    found = []
    for m in _FLEX_NUMBER_RE.finditer(body):
        n = normalize_number(m.group(0).replace(" ", ""))
        if n is None:
            continue
        before, after = body[max(0, m.start() - 3):m.start()], body[m.end():m.end() + 3]
        result = body[:m.start()].rstrip().endswith(("=", "≈"))
        if not result and (_OPERATOR_BEFORE_RE.search(before) or _OPERATOR_AFTER_RE.match(after)):
            continue  # an operand of an expression ("(2+32)", "14 + 6 = 20"), not a result
        if n in qnums and not result:
            continue  # copied from the question ("... if you pay $40 for a sub")
        found.append(n)
    return found


def _negated(text: str, at: int) -> bool:
    """A negation in the three words before text[at] ("not (B)", "does not entail")."""
    return bool(_NEGATION_RE.search(text[max(0, at - 60):at]))


def _option_candidates(sentence: str, options: dict[str, str], by_text: bool = False) -> list[str]:
    """Option letters a statement gives ("(C)", "C)", "option C", "answer: C", "C."), or with
    by_text the options it names by their text (from the question's "(A) bank (B) ...")."""
    if _QUOTE_OPEN_RE.match(sentence):
        return []
    hits: list[tuple[int, str]] = []
    if by_text:  # "... a security measure at a bank." -> the option named "bank"
        low = sentence.lower()
        for text, letter in options.items():
            for m in re.finditer(rf"(?<![\w-]){re.escape(text)}(?![\w-])", low):
                if not (_negated(low, m.start()) or _OPTION_REJECTED_RE.match(low[m.end():m.end() + 80])):
                    hits.append((m.start(), letter))
    else:
        for m in _OPTION_FLEX_RE.finditer(sentence):
            letter = next(g for g in m.groups() if g)
            if _negated(sentence, m.start()) or _OPTION_REJECTED_RE.match(sentence[m.end():m.end() + 80]):
                continue  # "not (B)", "(C) fruit market is not applicable"
            hits.append((m.start(), letter.upper()))
    return [h for _, h in sorted(hits)]  # two or more letters: a hedge or the choices copied


def _label_candidates(sentence: str) -> list[str]:
    """NLI labels a statement gives: a label noun said of something ("this is a contradiction",
    "the hypothesis is neutral") or entails / contradicts, not negated. When it mentions two
    labels all mentions come back (the caller sees a hedge); three: the instruction copied."""
    if _QUOTE_OPEN_RE.match(sentence) or _CONDITIONAL_RE.match(sentence):
        return []
    hits, mentioned = [], []
    for m in _LABEL_FLEX_RE.finditer(sentence):
        if _negated(sentence, m.start()):
            continue  # "does not entail", "not a contradiction"
        word = m.group(1).lower()
        label = ("entailment" if word.startswith("entail") else
                 "neutral" if word == "neutral" else "contradiction")
        mentioned.append(label)
        if word.startswith(("entails", "entailed", "contradicts", "contradicted")) or \
                _LABEL_PREDICATE_RE.search(sentence[max(0, m.start() - 60):m.start()]):
            hits.append(label)  # not "a non-sequitur (finite contradiction)", "a claim of ..."
    if len(set(mentioned)) >= 3:
        return []  # "entailment, neutral or contradiction": the instruction copied
    return mentioned if len(set(mentioned)) >= 2 else hits


def _yesno_candidates(sentence: str) -> list[str]:
    if _YESNO_ECHO_RE.search(sentence):
        return []  # "answer yes or no": the instruction copied
    return [next(g for g in m.groups() if g).lower() for m in _YESNO_FLEX_RE.finditer(sentence)]


# a reply's last line is closed when it ends a sentence (. ! ?) or closes markup / a bracket
# / a quote (`**$18**`, `$\boxed{18}$`, `(B)`); a reply stopped at its token limit mostly is not
_CLOSED_RE = re.compile(r"(?:[.!?)\]}\"'”’$]|\S\*+)\s*$")  # "**18**" closes, "2 *" does not


# a statement that ends on an expression still to be worked out: "... which is 1.1 * 1."
_OPEN_EXPRESSION_RE = re.compile(r"(?:[*×÷+]|\s[/-])\s*[-$€£]?\d[\d,]*(?:\.\d+)?\s*%?\s*[.!]?\s*$")


def _closed(line: str) -> bool:
    if re.fullmatch(r"\s*(?:\d{1,2}[.)]|[-*•])\s*", line):
        return False  # cut off right after a list marker ("2.")
    return bool(_CLOSED_RE.search(line.rstrip())) and not _OPEN_EXPRESSION_RE.search(
        clean_markup(line))


def _states_no_answer(sentence: str, family: str, options: dict[str, str]) -> bool:
    """True when a sentence holds an answer statement ("the answer is ...") whose answer is not
    one of the family ("the answer is infinity", "the answer is yester day ...")."""
    matches = _overlapping(_ANSWER_IS_RES[family], sentence, limit=5)
    return bool(matches) and all(
        _read_statement(m.group("ans") or m.group("ans2") or "", family, options) is None
        for m in matches)


def _hedged(fragment: str, family: str) -> bool:
    """True when the first sentence of an answer statement names two or more different answers
    ("both a contradiction and an entailment", "(C) market or (D) train station"): it states no
    single answer. Numbers are not checked: "5 + 3 = 8" names one result."""
    if family == "option":
        found = _option_candidates(_cut_first(fragment), {})
    elif family == "label":
        found = _label_candidates(_cut_first(fragment))
    elif family == "yesno":
        first = _cut_first(fragment)
        if _YESNO_ECHO_RE.search(first):
            return True  # "the answer is yes or no": the instruction copied
        found = _yesno_candidates(first)
    else:
        return False
    return len(set(found)) >= 2


def _cut_first(text: str) -> str:
    parts = _sentences(text)
    return parts[0] if parts else ""


def _flexible(lines: list[str], starts: list[int], family: str, skip: set[int],
              question: str | None) -> AnswerSpan | None:
    """The last candidate of the family in the reply's final statement (see extract_answer)."""
    qnums = _question_numbers(question) if family == "number" else set()
    options = _question_options(question) if family == "option" else {}
    read = {"number": lambda s: _number_candidates(s, qnums),
            "option": lambda s: _option_candidates(s, options),
            "label": _label_candidates, "yesno": _yesno_candidates}[family]
    # statements from the end: (line index, sentence), closing remarks and questions dropped
    statements: list[tuple[int, str]] = []
    closed = None  # whether the reply's last line with content is closed
    for idx in _content_lines_backwards(lines, skip):
        if closed is None:
            closed = _closed(lines[idx])
        cleaned = clean_markup(_strip_placeholders(lines[idx]))
        for sentence in reversed(_sentences(cleaned)):
            if not statements and _is_closer(sentence):
                closed = True  # a closing remark ends the reply: it was not cut off
                continue
            statements.append((idx, sentence))
        if len(statements) > 40:
            break
    if not statements or not closed:
        return None  # nothing said, or the reply was cut off: its last sentence is unfinished
    if _FORWARD_RE.match(statements[0][1]) and "=" not in statements[0][1]:
        return None  # the reply ends announcing more work ("Let's ...", "Next, we ..."): unfinished
    # the final statement: the last one that gives a candidate; one remark without a candidate
    # may follow it ("This is the answer to the question.", a restatement of the question's
    # data). A yes/no answer usually opens the reply ("No, because ..."): for that family any
    # statement may give it, the last one that does wins.
    reach = len(statements) if family == "yesno" else 2
    passes = [read]
    if options:  # an option named by its text only when no statement gives a letter
        passes.append(lambda s: _option_candidates(s, options, by_text=True))
    for read_one in passes:
        for idx, sentence in statements[:reach]:
            found = read_one(sentence)
            if found:
                if family != "number" and len(set(found)) >= 2:
                    return None  # a hedge between several answers states none
                if _states_no_answer(sentence, family, options):
                    return None  # "8 is a problem ..., the answer is infinity": its own answer
                return AnswerSpan(found[-1], "flexible", idx, starts[idx])
    if family in ("option", "label"):
        # the answer-first layout: a first line that is only an answer ("(A) (1,1)",
        # "Entailment."), then the explanation, which names no answer of its own
        first = next((i for i, line in enumerate(lines[:_MAX_LINES])
                      if i not in skip and _HAS_WORD_RE.search(clean_markup(line))), None)
        if first is not None:
            got = _read_fragment(clean_markup(lines[first]), family, pure=True, split_equals=False)
            if got is not None:
                return AnswerSpan(got, "flexible", first, starts[first])
    return None


# ---------------------------------------------------------------- the reader
def find_answer(text: object, family: str = "number", question: str | None = None,
                flexible: bool = True) -> AnswerSpan | None:
    """Where `extract_answer` reads its answer (AnswerSpan), or None. Never raises."""
    try:
        return _find(text, family, question, flexible)
    except Exception:  # noqa: BLE001 - a parser of untrusted text must never raise
        return None


_RANK = {rule: i for i, rule in enumerate(ANSWER_RULES)}


def _find(text: object, family: str, question: str | None, flexible: bool) -> AnswerSpan | None:
    if not isinstance(text, str) or not text.strip() or family not in FAMILIES:
        return None
    if len(text) > _MAX_REPLY_CHARS:
        text = text[-_MAX_REPLY_CHARS:]
    lines = text.splitlines()
    # a line longer than _MAX_LINE_CHARS is read from its end; starts[i] is the text offset
    # of what is left of line i
    starts = [s + max(0, len(line) - _MAX_LINE_CHARS) for s, line in zip(_line_starts(text), lines)]
    lines = [line[-_MAX_LINE_CHARS:] for line in lines]
    skip = _echo_lines(lines)
    options = _question_options(question) if family == "option" else {}
    found = []
    for rule in (lambda: _rule_hash(lines, starts, family, skip),
                 lambda: _rule_boxed(text, starts, family, skip),
                 lambda: _rule_phrases(lines, starts, family, skip, options),
                 lambda: _rule_last_line(lines, starts, family, skip)):
        try:
            got = rule()
        except Exception:  # noqa: BLE001
            got = None
        if got is not None:
            found.append(got)
    if found:  # the statement nearest the end wins; on one line, the rule listed first
        return max(found, key=lambda f: (f.line, -_RANK[f.rule]))
    if not flexible:
        return None
    try:
        return _flexible(lines, starts, family, skip, question)
    except Exception:  # noqa: BLE001
        return None


def extract_answer(text: str | None, family: str = "number", *,
                   question: str | None = None) -> tuple[str | None, str | None]:
    """Read the final answer a reply states, whatever its layout. Never raises.

    Source: docs/design.md §2.1 (answers, families) and §2.3 (teacher replies); the flexible
    rule follows lm-evaluation-harness's GSM8K `flexible-extract` filter and the Qwen2.5-Math
    evaluator. `text`: one reply (any string; None, empty, non-str, huge or binary input gives
    (None, None)); `family`: one of FAMILIES; `question`: the question the reply answers
    (optional, keyword): it keeps the flexible rule from reading a number copied from the
    question and lets it read an option by its text.

    Markdown and LaTeX wrappers are stripped first (`clean_markup`). Protocol echoes are not
    answers: placeholders (`<answer>`, `[answer]`, `<number>`, `(<letter>)`) and runs of
    enumerating `####` lines (`#### <answer>` then `#### 1`, `#### 2`, ...).

    Strict rules; when several read an answer, the statement nearest the end of the reply wins
    (on one line: in this order):

    1. `hash`: a `#### N` line (a numbered markdown heading `#### 1. Step` is skipped).
    2. `boxed`: `\\boxed{N}` (nested braces such as `\\boxed{\\frac{1}{2}}` handled).
    3. `answer_is`: "answer" (or option / choice / label), any few words or a parenthetical,
       then is / was / would be / =: "The answer to this question is 42", "the final answer
       (in dollars) is $42.", "The correct option is (C)". The answer starts the text after
       the verb (up to four words may come first: "is that she has 42 apples").
       Also "the answer: N" anywhere ("we get the answer: 1600"). With the question's
       choices, an option named by its text ("The answer is dense forest." -> E).
       `answer_label`: "Answer: N" / "**Final Answer:** N" / "Updated answer: N" (a sentence
       opening with at most two words and "answer:"), or "Answer:" alone on a line followed
       by a line that is only an answer. A statement whose answer names two or more answers
       ("the answer is both a contradiction and an entailment", "(C) (D) ... (E)") is a hedge:
       not read. After `=` the value after the last `=` is read, unless it is an expression
       still to be worked out ("= 3 * 4").
    4. `last_line`: the last line (closing remarks passed over) if it is only an answer ("42",
       "**$1,200**", "42 apples", "(B)", "Entailment.", "Yes.").

    Then, only when no strict rule reads an answer, `flexible`: the last candidate of the family
    in the reply's FINAL STATEMENT (lm-eval's flexible-extract takes the last number of the
    whole reply; the Qwen2.5-Math evaluator the last number of the prediction). The reply is
    split into sentences; closing remarks ("I hope this helps!", "Let me know if ...") and
    questions at its end are passed over; the final statement is the last sentence that gives a
    candidate, with at most one sentence without one after it ("This is the answer to the
    question.", a restatement of the question's data). Candidates:

    - number: every number (lm-eval's `(-?[$0-9.,]{2,})|(-?[0-9]+)` idea) except step
      markers ("Step 2:", "3.") and operands of an expression ("(2+32)", the 14 and 6 of
      "14 + 6 = 20"; the result after `=` counts), LESS the numbers copied from `question`: a
      number of the question counts only as an `= N` result. So "So, it costs $1200 if you pay
      $40 for a sub" gives 1200, and "Janet has 16 eggs." (16 from the question) gives
      nothing: a statement whose only numbers are the question's restates the data;
    - option: "(C)", "[C]", "C)", "option C", "answer: C", a statement that is only "C.", not
      negated or rejected ("not (B)", "(C) ... is not applicable"); when no statement gives a
      letter, an option named by its text (the question's "(A) bank ...");
    - label: entailment / neutral / contradiction said OF something ("this is a contradiction",
      "the hypothesis is neutral": after is / are / be ...), or entails / contradicts; not
      negated ("does not entail", "not necessarily entailment", "unlikely to entail");
    - yesno: an answer-shaped yes / no ("No, ...", "So, yes, ...", "the answer would be no",
      "Answer: yes"); any statement may give it (the answer-first layout "No, because ...
      [reasons]"), the last one wins.

    When no statement near the end gives one, an option or label reply may still state it
    first: a first line that is only an answer ("(A) (1,1)", then an explanation).

    No flexible answer when the reply did not conclude: its last line is not closed (no full
    stop, bracket or closing markup: a reply stopped at its token limit; "2 *" is an operator,
    "**18**" markup), it ends on a bare list marker ("2.") or on an expression still to be
    worked out ("which is 1.1 * 1."), or its last sentence announces more work without working
    it out ("Let's ...", "Next, we ...", "To find ..., we ...", "We need ..."). Nor when the
    final statement hedges between answers (two or more options or labels: "(C) or (D)",
    "both a contradiction and an entailment"), copies the choices (all three labels, "yes or
    no"), holds an answer statement whose answer is none of the family ("... the answer is
    infinity."), or, for labels, is a conditional ("If the premise entails ...").

    Returns (answer, rule): the normalised answer (`normalize_answer`) and the rule's name
    from ANSWER_RULES, or (None, None).
    """
    found = find_answer(text, family, question)
    return (found.answer, found.rule) if found else (None, None)


def flexible_answer(text: str | None, family: str = "number",
                    question: str | None = None) -> str | None:
    """The answer of a STUDENT's explanation read the lm-evaluation-harness "flexible-extract"
    way: the full reply reader, flexible rule included (`extract_answer`). The strict reading
    (the `#### N` line only) is `parse_answer`. Normalised answer or None; never raises."""
    return extract_answer(text, family, question=question)[0]


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
            m = _ANSWER_IS_RES.get(family, _ANSWER_IS_RE).match(re.sub(r"^(?:the|my|our)\s+", "", body, flags=re.IGNORECASE))
            if m is not None:
                body = m.group("ans") or m.group("ans2") or ""
        return _read_fragment(body, family, pure=True, split_equals=False) is not None
    except Exception:  # noqa: BLE001
        return False
