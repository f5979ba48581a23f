"""The student's explanation format, shared by every method (docs/design.md §2.1, §5.7).

Plain format: `Question: <q>\nAnswer:\n<steps, one per line>\n#### <answer>`; or the student's
own chat template around the question when it has one (§5.7), the explanation being the
assistant's reply. Teacher prompts (ELAD's CoT and CLEAR, EvoKD's templates) live with their
method. A change to any text here changes what teachers are sent: bump the methods'
PROMPT_VERSION (`elad_core.elad.prompts`) so cached teacher results are not reused.
"""

from __future__ import annotations

ANSWER_CUE = "#### "


# ---------------------------------------------------------------- student
# In chat format (an instruct student with a chat template, docs/design.md §5.7) the question
# goes into the user turn with this instruction; the explanation is the assistant's reply.
CHAT_INSTRUCTION = (
    "Solve this problem step by step, one short step per line. End with a last line of the "
    "form '#### <answer>'."
)
QUESTION_SLOT = "{question}"


def student_prompt(question: str, template: str | None = None) -> str:
    """The text the student continues: its explanation starts right after it.

    template: None (plain format `Question: <q>\nAnswer:\n`) or a rendered chat template with
    one `{question}` slot (`chat_prompt_template`), filled with the question + CHAT_INSTRUCTION.
    """
    if template is None:
        return f"Question: {question.strip()}\nAnswer:\n"
    return template.replace(QUESTION_SLOT, f"{question.strip()}\n{CHAT_INSTRUCTION}", 1)


def chat_prompt_template(tok) -> str | None:
    """The tokenizer's chat template rendered for one user turn with a `{question}` slot and the
    assistant turn opened (`add_generation_prompt`); None when it has no chat template."""
    if not getattr(tok, "chat_template", None):
        return None
    marker = "ELADQUESTIONSLOT7f3a"
    text = tok.apply_chat_template([{"role": "user", "content": marker}],
                                   add_generation_prompt=True, tokenize=False)
    if text.count(marker) != 1:
        return None
    bos = getattr(tok, "bos_token", None)
    if bos and text.startswith(bos) and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
        text = text[len(bos):]  # the tokenizer adds it again
    return text.replace(marker, QUESTION_SLOT)


def student_target(steps: str, answer: str) -> str:
    """Training target after the prompt: steps, one per line, then `#### answer`."""
    steps = steps.strip()
    return f"{steps}\n{ANSWER_CUE}{answer}" if steps else f"{ANSWER_CUE}{answer}"


def probe_prompt(question: str, steps: list[str], template: str | None = None) -> str:
    """EGSS probe (docs/design.md §2.2): question + the first i steps + the answer cue `#### `."""
    body = "".join(f"{s}\n" for s in steps)
    return f"{student_prompt(question, template)}{body}{ANSWER_CUE}"


# Text that shows the tokenizer of the embedded student the answer format (no gold data):
# the prompt frame, the answer mark and GSM8K's calculation annotations.
FORMAT_TEXTS = [
    student_prompt("What is 12 + 34?") + "12 + 34 = <<12+34=46>>46\n" + ANSWER_CUE + "46",
    "<<3*4=12>>12 <<10-7=3>>3 <<8/2=4>>4 $5.50 1,000 50% 0.25",
] * 20
