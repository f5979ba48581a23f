"""Sentences of a reply and the answer candidates a sentence names, per family
(docs/design.md §2.1): numbers (less those copied from the question), option letters (or an
option named by the question's text), NLI labels said of something, answer-shaped yes / no;
negated or rejected ones are not candidates, and two or more different ones are a hedge.
Closing remarks ("I hope this helps!") are recognised here too.

The flexible rule reads its candidates here, in the manner of lm-evaluation-harness's GSM8K
"flexible-extract" filter (regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`; see `reader.extract_answer`);
the strict rules use the sentences, closing remarks and hedges.
"""

from __future__ import annotations

import re

from elad_core.explanations.answers.families import normalize_number
from elad_core.explanations.answers.lines import MAX_REPLY_CHARS

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
_CONDITIONAL_RE = re.compile(r"^\s*(?:if|when|whether|suppose|assuming|unless)\b", re.IGNORECASE)
_QUOTE_OPEN_RE = re.compile(r"^\s*(?:premise|hypothesis|question|options?|answer\s+choices)\s*:",
                            re.IGNORECASE)


def is_closer(sentence: str) -> bool:
    s = sentence.strip().lstrip("*_>#- ").strip()
    return bool(_CLOSER_RE.match(s)) or s.endswith("?")


def split_sentences(line: str) -> list[str]:
    return [s.strip() for s in _SPLIT_SENTENCES_RE.split(line) if s.strip()]


def question_numbers(question: str | None) -> set[str]:
    if not isinstance(question, str) or not question:
        return set()
    out = set()
    for m in _FLEX_NUMBER_RE.finditer(question[:MAX_REPLY_CHARS]):
        n = normalize_number(m.group(0).replace(" ", ""))
        if n is not None:
            out.add(n)
    return out


def question_options(question: str | None) -> dict[str, str]:
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


def number_candidates(sentence: str, qnums: set[str]) -> list[str]:
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


def option_candidates(sentence: str, options: dict[str, str], by_text: bool = False) -> list[str]:
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


def label_candidates(sentence: str) -> list[str]:
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


def yesno_candidates(sentence: str) -> list[str]:
    if _YESNO_ECHO_RE.search(sentence):
        return []  # "answer yes or no": the instruction copied
    return [next(g for g in m.groups() if g).lower() for m in _YESNO_FLEX_RE.finditer(sentence)]


def hedged(fragment: str, family: str) -> bool:
    """True when the first sentence of an answer statement names two or more different answers
    ("both a contradiction and an entailment", "(C) market or (D) train station"): it states no
    single answer. Numbers are not checked: "5 + 3 = 8" names one result."""
    if family == "option":
        found = option_candidates(cut_first(fragment), {})
    elif family == "label":
        found = label_candidates(cut_first(fragment))
    elif family == "yesno":
        first = cut_first(fragment)
        if _YESNO_ECHO_RE.search(first):
            return True  # "the answer is yes or no": the instruction copied
        found = yesno_candidates(first)
    else:
        return False
    return len(set(found)) >= 2


def cut_first(text: str) -> str:
    parts = split_sentences(text)
    return parts[0] if parts else ""
