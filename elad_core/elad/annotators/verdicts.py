"""Reading the teacher's CLEAR verdicts (docs/design.md §2.3): `parse_verdict` (a reply that
opens with "yes" / "no" in any common phrasing) and `parse_chunk_reply` (a reply judging a chunk
of steps, one "Step <n>: Yes. <own version>" line per step up to the first "No"). Replies are
parsed leniently and never raise.
"""

from __future__ import annotations

import re

from elad_core.explanations.prompt import ANSWER_CUE


# CLEAR verdicts as real models phrase them, at the start of a reply (markdown tolerated):
# "Yes." / "**No**:" / "> yes," / "Yes, that's right" / "Correct." / "That step is correct" /
# "No —" / "Not quite" / "Incorrect" / "That's wrong". Anything else is no verdict.
_DECOR = r"[\s*_#>`\"'“”]*"
_TAIL = r"[\s*_`\"'“”.,:;!\-—–]*"
_SUBJECT = (r"(?:that|this|the|your|it)(?:\s+(?:step|one|move|reasoning|calculation|statement))?"
            r"(?:'s|’s|\s+is|\s+looks|\s+seems)\s+(?:(?:absolutely|perfectly|entirely|completely"
            r"|fully|totally|all|quite)\s+)?")
_VERDICT_WORDS = {
    "yes": (r"(?:yes|yeah|yep|yup)\b",
            r"(?:correct|right|exactly|absolutely|indeed|agreed|valid|accurate)(?=\s*[*_`\"'.,:;!—–\-]|\s*$)",
            _SUBJECT + r"(?:correct|right|valid|accurate|fine|good)\b"),
    "no": (r"(?:no|nope|nah)\b",
           r"(?:not\s+(?:quite|really|exactly|correct|right)|incorrect|wrong|invalid|inaccurate)\b"
           r"|not(?=\s*[*_`\"'.,:;!—–\-]|\s*$)",
           r"(?:that|this|the|your|it)(?:\s+(?:step|one|move|reasoning|calculation|statement))?"
           r"(?:'s|’s|\s+is|\s+looks|\s+seems|\s+isn't|\s+isn’t)\s+(?:not\s+(?:quite\s+|entirely\s+"
           r"|completely\s+|fully\s+)?(?:correct|right|valid|accurate)|quite\s+right|incorrect|wrong"
           r"|invalid|inaccurate|flawed|a\s+mistake|an\s+error)\b"),
}
_HEDGE_RE = re.compile(r"^" + _DECOR + r"(?:unfortunately|sadly|i'm\s+afraid|i’m\s+afraid|actually|hmm)"
                       r"[\s,:]*", re.IGNORECASE)
# longest phrasings first: "No, that's not right" is "no"; "That's not correct" is not "yes"
_VERDICT_RES = [(verdict, re.compile(r"^" + _DECOR + rf"({pattern})" + _TAIL, re.IGNORECASE))
                for index in (2, 1, 0) for verdict in ("no", "yes")
                for pattern in [_VERDICT_WORDS[verdict][index]]]
# "I'm afraid not" / "Unfortunately not"
_AFRAID_NOT_RE = re.compile(r"^" + _DECOR + r"(?:i'm|i’m|i\s+am)\s+afraid\s+not\b" + _TAIL, re.IGNORECASE)
# "Step 3: Yes. ..." / "**Step 3:** No" / "3. Correct" / "Step 3 is wrong" at a line's start
_STEP_TAG_RE = re.compile(r"^[\s*_#>`\-]*(?:step\s*\d+(?:\s+(?:is|was))?|\d+\s*[.):])"
                          r"[\s*_`]*[:.)\-–—]?[\s*_`]*", re.IGNORECASE)


def _match_verdict(text: str) -> tuple[str, int] | None:
    m = _AFRAID_NOT_RE.match(text)
    if m is not None:
        return "no", m.end()
    for verdict, pattern in _VERDICT_RES:
        m = pattern.match(text)
        if m is not None:
            return verdict, m.end()
    return None


def parse_verdict(text: str) -> tuple[str | None, str]:
    """Teacher CLEAR reply -> ("yes" | "no" | None, the text after the verdict).

    The verdict opens the reply, in any common phrasing ("Yes.", "**Yes.**", "Yes, that's
    right", "Correct.", "That step is correct"; "No —", "Not quite", "Incorrect", "That's
    wrong", "Unfortunately, no"). A restatement of the verdict right after it ("Yes, that's
    correct.") is dropped from the returned text, so the first line left is the teacher's own
    step. No verdict: (None, text). Never raises.
    """
    if not isinstance(text, str):
        return None, ""
    hedge = _HEDGE_RE.match(text)
    body = text[hedge.end():] if hedge else text
    found = _match_verdict(body)
    if found is None:
        return None, text
    verdict, end = found
    rest = body[end:]
    for _ in range(3):  # "No, that's not right. Not quite: ..." -> the text after it
        if "\n" in body[:len(body) - len(rest)]:
            break  # a restatement shares the verdict's line; the next line is the step
        again = _match_verdict(rest)
        if again is None or again[0] != verdict or again[1] == 0:
            break
        rest = rest[again[1]:]
    return verdict, rest


def _tagged_verdict(line: str) -> tuple[str, str] | None:
    """("yes" | "no", the rest of the line) of a line such as "Step 3: Yes. <step>",
    "**Step 3:** No", "3. Correct" or "Step 3 is wrong"; None for other lines."""
    m = _STEP_TAG_RE.match(line)
    if m is None:
        return None
    verdict, rest = parse_verdict(line[m.end():])
    return (verdict, rest.strip()) if verdict is not None else None


def parse_chunk_reply(text: str, n_steps: int) -> tuple[list[str | None], bool, str] | None:
    """A reply to a CLEAR chunk of `n_steps` student steps -> (own versions of the accepted
    steps, in order (None: keep the student's), whether the next step was rejected, the text
    after the verdicts: the rest of the solution). None: no verdict at all.

    The protocol's reply is one verdict line per step, "Step <n>: Yes. <own version>" (the own
    version may be on the next line) up to the first "Step <n>: No." that is followed by the
    rest. Lines before the first verdict line are ignored. A reply that opens with a bare
    verdict ("Yes.\\n<own step>", "No. <rest>": the one-step protocol of the paper) judges the
    chunk's first step only. Never raises.
    """
    if not isinstance(text, str):
        return None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    if _tagged_verdict(lines[first]) is None:
        verdict, rest = parse_verdict(text)
        if verdict == "no":
            return [], True, rest
        if verdict == "yes":
            rest_lines = rest.splitlines()
            at = next((i for i, line in enumerate(rest_lines)
                       if line.strip() and not line.strip().startswith(ANSWER_CUE.strip())),
                      None)
            if at is None:
                return [None], False, rest
            return [rest_lines[at].strip()], False, "\n".join(rest_lines[at + 1:])
        first = next((i for i, line in enumerate(lines) if _tagged_verdict(line)), None)
        if first is None:
            return None
    own: list[str | None] = []
    i = first
    while i < len(lines) and len(own) < n_steps:
        tagged = _tagged_verdict(lines[i])
        if tagged is None:
            if lines[i].strip():
                break  # the verdicts ended: the rest of the reply follows
            i += 1
            continue
        verdict, rest = tagged
        if verdict == "no":
            return own, True, "\n".join([rest, *lines[i + 1:]])
        i += 1
        if not rest and i < len(lines) and lines[i].strip() and _tagged_verdict(lines[i]) is None \
                and not lines[i].strip().startswith(ANSWER_CUE.strip()):
            rest, i = lines[i].strip(), i + 1  # "Step 3: Yes." / "<own version>"
        own.append(rest or None)
    return own, False, "\n".join(lines[i:])
