"""The answer a fragment of a reply states (`read_fragment`), normalised for its family
(docs/design.md §2.1): a fragment that is only an answer ("42", "$1,200.", "42 apples", "(B)",
"Yes.") or one whose first sentence starts with it after a few prose words ("she has 42
apples", "therefore (C)"; "5 + 3 = 8" -> 8). The strict rules read their answers through it.
"""

from __future__ import annotations

import re

from elad_core.explanations.answers.families import normalize_answer

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


def read_fragment(fragment: str, family: str, pure: bool, skip_words: int = 0,
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
