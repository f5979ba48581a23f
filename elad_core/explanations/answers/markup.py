"""Markdown and LaTeX wrappers stripped from one line of a reply before any rule reads it
(`clean_markup`, docs/design.md §2.1), and `braced`: the content of a balanced `{...}` (the
strict `boxed` rule reads `\\boxed{...}` with it).
"""

from __future__ import annotations

import re
import unicodedata

_LATEX_WRAPPERS = ("text", "textbf", "textit", "mathrm", "mathbf", "mbox", "emph", "operatorname")
_LIST_MARK_RE = re.compile(r"^(?:[-*+•]\s+|>\s*)+")
_HEADING_RE = re.compile(r"^#{1,6}\s+")


def braced(text: str, start: int, limit: int = 500) -> tuple[str, int] | None:
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
            got = braced(text, k) if k < len(text) and text[k] == "{" else None
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
