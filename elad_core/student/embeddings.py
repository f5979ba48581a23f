"""The student's own question embeddings, for the `typical` / `hybrid` selectors.

docs/design.md §2.2.2: the mean over the question prompt's tokens (`prompts.student_prompt`)
of the student's last hidden layer. No extra model: the space is the one the student reasons
in, and it moves as the student is trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from elad_core.explanations.prompt import student_prompt


def question_embeddings(model: Any, tok: Any, questions: list[str], batch_size: int = 64,
                        max_length: int = 512, progress: bool = False,
                        template: str | None = None) -> np.ndarray:
    """Mean-pooled last hidden states over each question prompt's tokens.

    Returns (n, hidden_size) float32, row i for questions[i] (n = 0 gives (0, hidden_size)).
    Prompts longer than `max_length` tokens keep their first `max_length`. Padding is masked
    out, so a row does not depend on the batch it was computed in (up to float rounding).
    template: the student's chat prompt template (prompts.student_prompt), None: plain format.
    """
    hidden = int(model.config.hidden_size)
    if not questions:
        return np.zeros((0, hidden), np.float32)
    ids = [tok(student_prompt(q, template))["input_ids"][:max_length] for q in questions]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    out = np.zeros((len(ids), hidden), np.float32)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    bar = tqdm(total=len(ids), desc="embedding", unit="q", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(ids[i]) for i in batch)
            x = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # right padding: positions start at 0 for every row
                x[row, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                mask[row, :len(ids[i])] = 1
            states = model(input_ids=x.to(model.device), attention_mask=mask.to(model.device),
                           output_hidden_states=True).hidden_states[-1].float()
            m = mask.to(states.device).unsqueeze(-1).float()
            pooled = (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            out[batch] = pooled.cpu().numpy()
            bar.update(len(batch))
    bar.close()
    return out
