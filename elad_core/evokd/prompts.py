"""EvoKD teacher prompts (docs/design.md §2.5): analyse, generate (hard + easy), static generate,
label. The texts are data files under `elad_core/evokd/templates/`; `PROMPT_VERSION` is
derived from their bytes, so editing any template changes every teacher cache key.

Builders return chat messages; parsers read the teacher's replies and never raise: they
return what they could read plus a status (`ok | partial | unparsable`). The
`shown_*` / `label_inputs` readers are the other side of the same formats, used by the
oracle teacher (a simulation) to see what it was asked.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from elad_core.evokd.metrics import entities

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES = ("system", "analyse", "generate", "generate_static", "label_classification",
                  "label_ner")
TEMPLATES = {n: (TEMPLATE_DIR / f"{n}.txt").read_text(encoding="utf-8").strip()
             for n in TEMPLATE_NAMES}


def prompt_version(templates: dict[str, str]) -> str:
    """"evokd-1." + 10 hex of sha256 over the templates' names and texts: any edit of a
    template file changes it, and with it every teacher cache key."""
    blob = "\x00".join(f"{n}\x00{templates[n]}" for n in sorted(templates))
    return "evokd-1." + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:10]


PROMPT_VERSION = prompt_version(TEMPLATES)

# phrases that tell one prompt from another (checked against the templates at import)
ANCHORS = {"analyse": "Analyse the student's weaknesses",
           "generate": "that the student would likely get WRONG (hard)",
           "static": "similar in style and content to the examples",
           "label": "Reply with one line per input"}
for _kind, _template in (("analyse", "analyse"), ("generate", "generate"),
                         ("static", "generate_static"), ("label", "label_classification"),
                         ("label", "label_ner")):
    if ANCHORS[_kind] not in TEMPLATES[_template]:
        raise RuntimeError(f"{TEMPLATE_DIR / _template}.txt lost its anchor {ANCHORS[_kind]!r}")

SEP = " :: "
NONE_SHOWN = "(none)"
NO_ENTITIES = "no entities"
_NUMBERED = re.compile(r"^\s*(\d+)\s*[.):]\s*(.*?)\s*$")


# ------------------------------------------------------------------ answers as text
def answer_text(kind: str, text: str, label: str) -> str:
    """How a label is shown to the teacher: the label name, or for NER the entities as
    `type: span | type: span` ("no entities" when none)."""
    if kind != "ner":
        return label
    tokens, tags = text.split(" "), label.split(" ")
    spans = [f"{t}: {' '.join(tokens[s:e + 1])}" for t, s, e in entities(tags)]
    return " | ".join(spans) if spans else NO_ENTITIES


def types_of_answer(answer: str) -> set[str]:
    """Entity types named in an NER answer text (inverse of `answer_text`)."""
    if answer.strip() == NO_ENTITIES:
        return set()
    return {part.partition(": ")[0].strip() for part in answer.split(" | ") if ": " in part}


def labels_text(kind: str, labels: list[str]) -> str:
    """The closed label set as the prompts show it (NER: the entity types)."""
    if kind == "ner":
        return ", ".join(sorted({t[2:] for t in labels if t != "O"}))
    return ", ".join(labels)


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {x}" for i, x in enumerate(lines, 1)) or NONE_SHOWN


# ------------------------------------------------------------------ builders
def system_message() -> dict[str, str]:
    return {"role": "system", "content": TEMPLATES["system"]}


def analyse_messages(task: str, labels: str, right: list[tuple[str, str]],
                     wrong: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    """Analysis call: right = (text, answer), wrong = (text, correct answer, student answer)."""
    text = TEMPLATES["analyse"].format(
        task=task, labels=labels, right=_numbered([SEP.join(r) for r in right]),
        wrong=_numbered([SEP.join(w) for w in wrong]))
    return [system_message(), {"role": "user", "content": text}]


def generate_messages(analyse: list[dict[str, str]], analysis: str, n_hard: int,
                      n_easy: int) -> list[dict[str, str]]:
    """The generate call: the analysis conversation, the teacher's analysis, the request."""
    ask = TEMPLATES["generate"].format(n_hard=n_hard, n_easy=n_easy)
    return analyse + [{"role": "assistant", "content": analysis}, {"role": "user", "content": ask}]


def static_messages(task: str, labels: str, examples: list[tuple[str, str]],
                    n: int) -> list[dict[str, str]]:
    """Static (AugGPT-like) generation: the seed examples, no word about the student."""
    text = TEMPLATES["generate_static"].format(
        task=task, labels=labels, examples=_numbered([SEP.join(e) for e in examples]), n=n)
    return [system_message(), {"role": "user", "content": text}]


def label_messages(kind: str, task: str, labels: str, texts: list[str]) -> list[dict[str, str]]:
    """The label call for a batch of texts (NER texts: tokens separated by single spaces)."""
    template = TEMPLATES["label_ner" if kind == "ner" else "label_classification"]
    text = template.format(task=task, labels=labels, inputs=_numbered(texts))
    return [system_message(), {"role": "user", "content": text}]


# ------------------------------------------------------------------ reply parsers
def _items(lines: list[str]) -> list[str]:
    """Texts of the numbered lines `N. text` among `lines` (others ignored)."""
    out = []
    for line in lines:
        m = _NUMBERED.match(line)
        if m and m.group(2) and m.group(2) not in ("...", "<text>"):
            out.append(" ".join(m.group(2).split()))
    return out


def parse_generated(reply: str, n_hard: int, n_easy: int) -> tuple[list[str], list[str], str]:
    """(hard texts, easy texts, status) from a generate reply (HARD / EASY sections).

    Extra items are cut to the requested counts; status is ok when both counts were met,
    partial when some texts were read, unparsable when none.
    """
    section: str | None = None
    found: dict[str, list[str]] = {"hard": [], "easy": []}
    for line in reply.splitlines():
        head = line.strip().strip("#*:_ ").lower()
        if not _NUMBERED.match(line) and head.startswith(("hard", "easy")):
            section = head[:4]  # "HARD", "**Hard:**", "Hard (likely wrong):" ...
        elif section is not None:
            found[section] += _items([line])
    hard, easy = found["hard"][:n_hard], found["easy"][:n_easy]
    status = ("ok" if (len(hard), len(easy)) == (n_hard, n_easy)
              else "partial" if hard or easy else "unparsable")
    return hard, easy, status


def parse_static(reply: str, n: int) -> tuple[list[str], str]:
    """(texts, status) from a static generate reply (numbered lines)."""
    texts = _items(reply.splitlines())[:n]
    return texts, "ok" if len(texts) == n else "partial" if texts else "unparsable"


def parse_labels(reply: str, kind: str, texts: list[str], labels: list[str]) -> list[str | None]:
    """One label per text (None where the reply has no valid one) from a label reply.

    Classification: `N. <label>`, matched case-insensitively to the closed set. NER:
    `N. <tag> <tag> ...`, one valid tag per token (else None for that text).
    """
    by_lower = {label.lower(): label for label in labels}
    out: list[str | None] = [None] * len(texts)
    for line in reply.splitlines():
        m = _NUMBERED.match(line)
        if not m or not (1 <= int(m.group(1)) <= len(texts)):
            continue
        i, answer = int(m.group(1)) - 1, m.group(2).strip().strip(".")
        if kind == "ner":
            tags = answer.split()
            if len(tags) == len(texts[i].split(" ")) and all(t in labels for t in tags):
                out[i] = " ".join(tags)
        else:
            out[i] = by_lower.get(answer.lower())
    return out


# ------------------------------------------------------------------ the oracle's side
def prompt_kind(message: str) -> str | None:
    """"analyse" | "generate" | "static" | "label" for a user message, else None."""
    for kind, anchor in ANCHORS.items():
        if anchor in message:
            return kind
    return None


def _section(message: str, start: str, end: str) -> list[str]:
    i = message.find(start)
    j = message.find(end, i + 1) if i >= 0 else -1
    if i < 0:
        return []
    body = message[message.find("\n", i) + 1: j if j >= 0 else None]
    return [x for x in _items(body.splitlines()) if x != NONE_SHOWN]


def shown_examples(message: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(right (text, answer), wrong (text, answer, student answer)) of an analyse message."""
    right = [tuple(x.rsplit(SEP, 1)) for x in _section(message, "Inputs it got RIGHT",
                                                        "Inputs it got WRONG")]
    wrong = [tuple(x.rsplit(SEP, 2)) for x in _section(message, "Inputs it got WRONG",
                                                        ANCHORS["analyse"])]
    return ([r for r in right if len(r) == 2], [w for w in wrong if len(w) == 3])


def static_examples(message: str) -> list[tuple[str, str]]:
    """(text, answer) examples of a static generate message."""
    rows = [tuple(x.rsplit(SEP, 1)) for x in _section(message, "Examples (", "\nWrite ")]
    return [r for r in rows if len(r) == 2]


def requested_counts(message: str) -> tuple[int, int]:
    """(n_hard, n_easy) of a generate message, or (n, 0) of a static one."""
    m = re.search(r"write (\d+) new inputs.*? and (\d+) new inputs", message, re.S | re.I)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.search(r"Write (\d+) new inputs", message)
    return (int(m.group(1)), 0) if m else (0, 0)


def label_inputs(message: str) -> list[str]:
    """The numbered texts of a label message."""
    i = message.find("\nInputs:\n")
    return _items(message[i + len("\nInputs:\n"):].splitlines()) if i >= 0 else []
