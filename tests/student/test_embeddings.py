"""The student's question embeddings (elad_core/student/embeddings.py, docs/design.md §2.2.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_STUDENT, gsm8k_examples

from elad_core.explanations.prompt import student_prompt
from elad_core.student.embeddings import question_embeddings


def test_mean_pooled_last_hidden_layer(tiny_student):
    model, tok = tiny_student
    questions = [e.question for e in gsm8k_examples(6)]
    x = question_embeddings(model, tok, questions, batch_size=4)
    assert x.shape == (6, TINY_STUDENT["hidden_size"]) and x.dtype == np.float32
    assert np.isfinite(x).all()
    # the definition, one question at a time: mean over its prompt tokens of the last layer
    ids = torch.tensor([tok(student_prompt(questions[2]))["input_ids"]])
    with torch.inference_mode():
        h = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
    assert x[2] == pytest.approx(h.mean(dim=0).numpy(), abs=1e-4)
    # padding is masked: the batch a question is embedded in does not matter
    assert question_embeddings(model, tok, questions, batch_size=1) == pytest.approx(x, abs=1e-4)
    assert question_embeddings(model, tok, questions[::-1], batch_size=6)[::-1] == pytest.approx(
        x, abs=1e-4)
    # different questions get different embeddings
    assert np.linalg.norm(x[0] - x[1]) > 1e-3
    assert question_embeddings(model, tok, []).shape == (0, TINY_STUDENT["hidden_size"])
