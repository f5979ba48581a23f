"""The offline oracle teacher's judgments (docs/design.md §2.4): a TEST DOUBLE for a real LLM.

It answers CoT, CLEAR turns and clear_single calls from a dataset's gold rationales and
never makes up an answer (an unknown question raises UnknownQuestion -> HTTP 400). The HTTP server that
puts it behind an OpenAI-compatible API is `elad_core.teacher.oracle.server`.
"""

from __future__ import annotations

import json
import logging

from elad_core.elad import prompts

from elad_core.explanations.prompt import student_target
from elad_core.explanations.steps import gsm8k_calculations, numbers_in, split_steps
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.records import Example
from elad_core.teacher.oracle.arithmetic import check_step, close, to_float
from elad_core.teacher.oracle.judging import UnknownQuestion, question_key, user_texts
from elad_core.teacher.oracle.styles import write_solution

logger = logging.getLogger(__name__)

class OracleJudge:
    """Answers CoT, CLEAR and clear_single from gold solutions (docs/design.md §2.3, §2.4).

    examples: Example records with gold `rationale` (steps, no `####` line) and normalised
    `answer`; those without an answer are not indexed. Step judging is per answer family:
    arithmetic ("number", GSM8K format) checks each step's calculations against the gold
    intermediate results (`_judge_number`); label families (option / label / yesno) accept the
    steps while the student's final answer, sent with the request, equals the gold label, and
    on rejection return the gold explanation and label.
    """

    def __init__(self, examples: list[Example], style: str = "oracle"):
        self._by_key = {question_key(e.question): e for e in examples if e.answer is not None}
        self.style = style  # how full CoT solutions are written (oracle/styles.py)

    def __len__(self) -> int:
        return len(self._by_key)

    def reply(self, messages: list[dict]) -> tuple[str, str, str]:
        """Chat messages -> (reply_text, question_id, mode), mode "cot" | "clear" | "clear_single"
        | "answer_turn" (the trigger turn after a reply without an answer: the gold answer).

        Raises UnknownQuestion when the first user message holds no question the oracle knows.
        """
        users = user_texts(messages)
        question = prompts.question_of(users[0]) if users else None
        example = self._by_key.get(question_key(question)) if question else None
        if example is None:
            shown = (question or (users[0] if users else ""))[:80]
            raise UnknownQuestion(f"oracle teacher: unknown question '{shown}'")
        gold = split_steps(example.rationale)
        if len(users) > 1 and prompts.is_answer_trigger(users[-1]):
            return f"{example.answer}.", example.id, "answer_turn"
        single = prompts.clear_single_steps(users[0])
        if single is not None:
            return self._clear_single(example, gold, single, users[0]), example.id, "clear_single"
        chunk = prompts.clear_chunk_of(users[0])
        if chunk is not None:
            return self._clear_chunk(example, gold, *chunk, users[0]), example.id, "clear"
        finish = prompts.clear_finish_of(users[0])
        if finish is not None:
            claimed = self._replay(example, gold, finish, users[0])
            rest = self._remaining(example, gold, claimed, rejected=False)
            return student_target(rest, example.answer), example.id, "clear"
        proposed = [prompts.proposed_step(u) for u in users]
        accepted = [p for p in proposed[:-1] if p is not None]
        if proposed[-1] is not None:
            claimed = self._replay(example, gold, accepted, users[0])
            correct, line = self._judge(example, gold, proposed[-1], claimed, users[0])
            if correct:
                own = gold[line] if line is not None else proposed[-1]
                return f"Yes.\n{own}", example.id, "clear"
            rest = self._remaining(example, gold, claimed)
            return "No.\n" + student_target(rest, example.answer), example.id, "clear"
        if users[-1].strip() == prompts.CLEAR_FINAL.strip():
            claimed = self._replay(example, gold, accepted, users[0])
            rest = self._remaining(example, gold, claimed, rejected=False)
            return student_target(rest, example.answer), example.id, "clear"
        if self.style == "oracle":  # our protocol, byte for byte
            return student_target(example.rationale, example.answer), example.id, "cot"
        return write_solution(gold, example.answer, example.id, self.style), example.id, "cot"

    def _clear_single(self, example: Example, gold: list[str], steps: list[str], first: str) -> str:
        """JSON reply: the first wrong student step (1-based, null if none), the rest, the answer."""
        claimed: set[int] = set()
        wrong = None
        for i, step in enumerate(steps):
            correct, line = self._judge(example, gold, step, claimed, first)
            if not correct:
                wrong = i + 1
                break
            if line is not None:
                claimed.add(line)
        rest = self._remaining(example, gold, claimed, rejected=wrong is not None)
        return json.dumps({"first_wrong_step": wrong, "steps": split_steps(rest),
                           "answer": example.answer})

    def _clear_chunk(self, example: Example, gold: list[str], accepted: list[str],
                     steps: list[str], last: bool, first: str) -> str:
        """A stateless CLEAR turn (prompts.CLEAR_CHUNK): 'Step n: Yes. <own>' per right step (the
        claimed gold line, or the student's step when it claimed none); at the first wrong one
        'Step n: No.' + the unclaimed gold lines + `#### answer`; all right in the last chunk:
        the unclaimed gold lines + `#### answer` after the verdicts."""
        claimed = self._replay(example, gold, accepted, first)
        lines = []
        for n, step in enumerate(steps, len(accepted) + 1):
            correct, line = self._judge(example, gold, step, claimed, first)
            if not correct:
                rest = self._remaining(example, gold, claimed)
                return "\n".join([*lines, f"Step {n}: No."]) + "\n" + student_target(
                    rest, example.answer)
            if line is not None:
                claimed.add(line)
            lines.append(f"Step {n}: Yes. {gold[line] if line is not None else step}")
        if last:
            rest = self._remaining(example, gold, claimed, rejected=False)
            lines.append(student_target(rest, example.answer))
        return "\n".join(lines)

    # ------------------------------------------------------------ judging
    def _judge(
        self, example: Example, gold: list[str], step: str, claimed: set[int], first: str
    ) -> tuple[bool, int | None]:
        """(correct, index of the gold line the step reproduces or None); per answer family.

        first: the first user message (label tasks read the student's final answer from it).
        """
        if example.family == "number":
            return self._judge_number(example, gold, step, claimed)
        raw = prompts.student_answer_of(first)
        student = normalize_answer(raw, example.family) if raw else None
        return student is not None and student == example.answer, None

    def _judge_number(
        self, example: Example, gold: list[str], step: str, claimed: set[int]
    ) -> tuple[bool, int | None]:
        """GSM8K arithmetic rule (docs/design.md §2.4).

        A step equal to an unclaimed gold line is correct. Otherwise every calculation in it must
        be true and its result (last calculation) must be a gold intermediate result or a number
        of the question; a step without calculation is correct only if it has no '='.
        """
        norm = " ".join(step.split())
        for i, line in enumerate(gold):
            if i not in claimed and " ".join(line.split()) == norm:
                return True, i
        n_calcs, all_true, result = check_step(step)
        if n_calcs == 0:
            return "=" not in step, None
        if not all_true or result is None:
            return False, None
        values = [self._line_values(line) for line in gold]
        for i, vals in enumerate(values):
            if i not in claimed and any(close(result, v) for v in vals):
                return True, i
        known = [v for vals in values for v in vals]
        known += [float(n) for n in numbers_in(example.question)]
        return any(close(result, v) for v in known), None

    @staticmethod
    def _line_values(line: str) -> list[float]:
        """Values of a gold line's `<<expr=value>>` annotations (unreadable ones skipped)."""
        out = []
        for _, value in gsm8k_calculations(line):
            number = to_float(value)
            if number is not None:
                out.append(number)
        return out

    def _replay(self, example: Example, gold: list[str], accepted: list[str], first: str) -> set[int]:
        """Gold lines claimed by the already-accepted steps (the dialogue stops at the first No)."""
        claimed: set[int] = set()
        for step in accepted:
            _, line = self._judge(example, gold, step, claimed, first)
            if line is not None:
                claimed.add(line)
        return claimed

    def _remaining(self, example: Example, gold: list[str], claimed: set[int],
                   rejected: bool = True) -> str:
        """Unclaimed gold lines in order, newline-joined. A line without calculation that comes
        before the last claimed line counts as covered (it only restates the question).
        Label tasks: the whole gold explanation on a rejection, nothing when all was accepted."""
        if example.family != "number":
            return "\n".join(gold) if rejected else ""
        last = max(claimed, default=-1)
        keep = [
            line
            for i, line in enumerate(gold)
            if i not in claimed and not (i < last and not gsm8k_calculations(line))
        ]
        return "\n".join(keep)
