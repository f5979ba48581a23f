"""What the student's decode paths share: decoded rows, eos ids, left padding, the answer-line stop,
and the decode options.

Used by sampling.py (`_decode_rows`, generate()), decode_loop.py (the product's own loop for plain
decoders) and probes.py (EGSS probes); imports neither of them, so each depends on this one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria


@dataclass
class Decoded:
    ids: list[int]  # generated tokens, cut before the first eos
    n_new_tokens: int  # generated tokens, eos included
    logprobs: list[float] | None  # log p of each token in `ids` (untempered), when asked


def eos_ids(model: Any, tok: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    return ids | {tok.eos_token_id} - {None}


def left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


class StopAfterAnswerLine(StoppingCriteria):
    """Per-row stop once a newline follows some non-blank generated text (probe answers)."""

    def __init__(self, model: Any, tok: Any, prompt_len: int):
        texts = tok.batch_decode([[i] for i in range(len(tok))], skip_special_tokens=True)
        size = max(len(tok), model.get_output_embeddings().weight.shape[0])  # padded vocabs
        texts += [""] * (size - len(texts))
        self.newline = torch.tensor(["\n" in t for t in texts], device=model.device)
        self.content = torch.tensor([bool(t.strip()) for t in texts], device=model.device)
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        gen = input_ids[:, self.prompt_len:]
        seen = self.content[gen].any(dim=1)  # content in any generated token so far
        return self.newline[gen[:, -1]] & seen


# How sampling.py's `_decode_rows` decodes. Defaults are the product's;
# benchmarks/student_sampling.py swaps in other values to measure each choice (the old path is
# engine="generate", share_prefill False, compact False, sampler "multinomial"). Not a user
# option: results depend on them. sampling.py and decode_loop.py read it at call time as
# `decode_common.OPTIONS`: assign a new value there (not to a name imported from here) to
# change how both decode.
@dataclass(frozen=True)
class DecodeOptions:
    engine: str = "loop"  # "loop": decode_loop where the model allows it; "generate": generate()
    generate_cache: str = "static"  # generate() engine: a fresh "static" cache or "dynamic"
    share_prefill: bool = True  # loop: encode each prompt once for its K copies
    compact: bool = True  # loop: drop finished rows from the batch (and their cache rows)
    sampler: str = "cdf"  # loop: "cdf" (inverse CDF, 1 uniform per row) or "multinomial"
    shared_attention: bool = True  # loop: the K copies attend their prompt's keys as one group


OPTIONS = DecodeOptions()


def cut_at_eos(new: list[list[int]], lps: list[list[float]] | None, eos: set[int]
               ) -> list[Decoded]:
    decoded = []
    for r, ids in enumerate(new):
        cut = next((j for j, t in enumerate(ids) if t in eos), None)
        n_new = len(ids) if cut is None else cut + 1
        ids = ids if cut is None else ids[:cut]
        decoded.append(Decoded(ids, n_new, None if lps is None else lps[r][: len(ids)]))
    return decoded

