"""What the oracle server asks of a judge, and the helpers every method's judge shares.

The oracle teacher is a TEST DOUBLE for a real LLM (docs/design.md §2.4): a judge answers a
chat request from gold data. Each method's judge lives with its method
(`elad_core.elad.oracle_judge.OracleJudge`, `elad_core.evokd.oracle_judge.EvoKDOracleJudge`);
`OracleServer` serves any object with this interface behind `/v1/chat/completions`.
"""

from __future__ import annotations

from typing import Protocol

from elad_core.errors import PermanentTeacherError


class Judge(Protocol):
    """An oracle's answers: `reply(messages)` -> (reply text, question id, mode), where mode
    names the kind of request ("cot", "clear", ...; it is logged); raises UnknownQuestion
    (HTTP 400) for a question it has no gold for. `len(judge)`: questions it knows."""

    def reply(self, messages: list[dict]) -> tuple[str, str, str]: ...

    def __len__(self) -> int: ...


TOKENIZER_MODEL = "gpt-3.5-turbo"  # litellm counts its tokens offline (bundled tiktoken files)


class UnknownQuestion(PermanentTeacherError):
    """The oracle has no gold solution for the question it was asked (HTTP 400)."""


def question_key(text: str) -> str:
    """Index key of a question: lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


def user_texts(messages: list[dict]) -> list[str]:
    """Text of every user message, in order (list-of-parts contents are joined)."""
    out = []
    for m in messages:
        if m.get("role") != "user":
            continue
        content = m.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(str(content))
    return out
