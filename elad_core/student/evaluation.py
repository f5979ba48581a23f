"""Held-out evaluation of the student: greedy decoding, exact answer match (docs/design.md §2 step 7).

Two scores, as lm-evaluation-harness reports GSM8K: **strict** accuracy reads the answer only
from the closing `#### <answer>` line the student is trained to write (`parse_answer`);
**flexible** accuracy reads it with the teacher-reply reader, whose last rule takes the last
number / option / label of the final statement (`answers.flexible_answer`), so a pretrained
student that says "The answer is 42." is scored on its answer, not its format. Answers are
normalised per answer family (answers.normalize_answer) before comparison with the gold answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from elad_core.explanations.answers import flexible_answer, normalize_answer, parse_answer
from elad_core.explanations.records import Example

log = logging.getLogger(__name__)

# heldout_loss's forward passes hold (rows, T, vocab) float logits, about three copies of them
# while the loss is computed: rows per pass are capped to keep one copy under this many floats
# (512 MiB in fp32). SmolLM2's 49,152-token vocabulary at 50 rows x 256 tokens was 2.5 GB a
# copy (9.6 GB peak); the embedded student's 768 tokens stay one pass per batch.
LOSS_LOGITS_FLOATS = 2 ** 27


@dataclass
class EvalResult:
    """n: examples evaluated; accuracy: share correct with the strict `#### N` reading, in
    [0, 1] (examples without gold count as wrong); parse_rate: share of predictions with a
    strict answer; flexible_accuracy / flexible_parse_rate: the same with the flexible reader;
    predictions: one dict per example, in input order, with keys question_id, prediction
    (the greedy explanation text), answer (strict, normalised or None), flexible_answer, gold,
    correct, flexible_correct."""

    n: int
    accuracy: float
    parse_rate: float
    predictions: list[dict[str, Any]] = field(default_factory=list)
    flexible_accuracy: float = 0.0
    flexible_parse_rate: float = 0.0


def score_predictions(
    examples: list[Example], texts: list[str], family: str = "number"
) -> EvalResult:
    """Exact-match bookkeeping of greedy explanation `texts` against `examples`' gold answers."""
    predictions = []
    for ex, text in zip(examples, texts, strict=True):
        answer = parse_answer(text, family).answer
        flexible = flexible_answer(text, family, question=ex.question)
        gold = normalize_answer(ex.answer, family) if ex.answer is not None else None
        correct = answer is not None and gold is not None and answer == gold
        predictions.append({"question_id": ex.id, "prediction": text, "answer": answer,
                            "flexible_answer": flexible, "gold": gold, "correct": correct,
                            "flexible_correct": flexible is not None and flexible == gold})
    n = len(predictions)
    missing = sum(p["gold"] is None for p in predictions)
    if missing:
        log.warning("%d of %d evaluation examples have no gold answer; counted as wrong", missing, n)
    accuracy = sum(p["correct"] for p in predictions) / n if n else 0.0
    parse_rate = sum(p["answer"] is not None for p in predictions) / n if n else 0.0
    flex_acc = sum(p["flexible_correct"] for p in predictions) / n if n else 0.0
    flex_parse = sum(p["flexible_answer"] is not None for p in predictions) / n if n else 0.0
    return EvalResult(n, accuracy, parse_rate, predictions, flex_acc, flex_parse)


def evaluate(
    model: Any, tok: Any, examples: list[Example], max_new_tokens: int, batch_size: int,
    family: str = "number", progress: bool = False, template: str | None = None,
) -> EvalResult:
    """Greedy-decode every example's question and score exact answer matches.

    max_new_tokens: explanation length cap (tokens); batch_size: sequences per generate();
    template: the student's chat prompt template (prompts.student_prompt), None: plain format.
    """
    from elad_core.student.sampling import greedy_explanations

    texts = greedy_explanations(model, tok, [ex.question for ex in examples], max_new_tokens,
                                batch_size, progress=progress, template=template)
    result = score_predictions(examples, texts, family)
    log.info("evaluated %d examples: accuracy %.3f (flexible %.3f), parse rate %.3f (flexible %.3f)",
             result.n, result.accuracy, result.flexible_accuracy, result.parse_rate,
             result.flexible_parse_rate)
    return result


def heldout_loss(
    model: Any, tok: Any, examples: list[Example], max_length: int, batch_size: int,
    template: str | None = None,
) -> float | None:
    """Mean cross-entropy (nats per target token) of the gold rationale + answer, teacher-forced.

    A generalisation signal independent of decoding: unlike the training loss it cannot fall
    by memorising the annotated set. None when no example has a gold rationale. batch_size:
    sequences per forward pass, fewer where their logits would pass LOSS_LOGITS_FLOATS.
    """
    import torch

    from elad_core.explanations.prompt import student_prompt, student_target
    from elad_core.student.training import collate, encode_examples

    pairs = [(student_prompt(e.question, template), student_target(e.rationale, e.answer))
             for e in examples if e.answer is not None and e.rationale]
    if not pairs:
        return None
    encoded = encode_examples(tok, pairs, max_length)
    vocab = getattr(model.config, "vocab_size", None) or 1
    rows = max(1, min(batch_size, LOSS_LOGITS_FLOATS // (max_length * vocab)))
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(encoded), rows):
            batch = collate(encoded[i:i + rows], tok.pad_token_id)
            logits = model(input_ids=batch["input_ids"].to(model.device),
                           attention_mask=batch["attention_mask"].to(model.device)).logits
            labels = batch["labels"].to(model.device)[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.size(-1)), labels.reshape(-1),
                ignore_index=-100, reduction="sum")
            total, count = total + loss.item(), count + int((labels != -100).sum())
    return total / max(count, 1)
