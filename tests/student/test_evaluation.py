"""The held-out loss's memory bound (elad_core/student/evaluation.py, docs/design.md §2 step 7)."""

from __future__ import annotations

import pytest
from conftest import gsm8k_examples


def test_heldout_loss_in_fewer_rows_where_the_logits_would_be_large(tiny_student, monkeypatch):
    """The held-out loss is the same mean per target token whether a batch goes through in one
    forward pass or, capped by LOSS_LOGITS_FLOATS (a large vocabulary), in several."""
    from elad_core.student import evaluation

    model, tok = tiny_student
    examples = gsm8k_examples(8)
    rows = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: rows.append(k["input_ids"].shape[0])
                        or forward(*a, **k))
    whole = evaluation.heldout_loss(model, tok, examples, max_length=128, batch_size=8)
    assert len(rows) == 1 and rows[0] >= 3  # one pass: the examples that fit 128 tokens
    n, rows[:] = rows[0], []
    # room for the logits of 2 rows of max_length tokens
    monkeypatch.setattr(evaluation, "LOSS_LOGITS_FLOATS", 2 * 128 * model.config.vocab_size)
    split = evaluation.heldout_loss(model, tok, examples, max_length=128, batch_size=8)
    assert rows == [2] * (n // 2) + [1] * (n % 2)
    assert whole is not None and split == pytest.approx(whole, rel=1e-5)
