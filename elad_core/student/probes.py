"""EGSS answer probes (docs/design.md §2.2): short greedy decodes after each step prefix.

The probes of one explanation (question + first i steps + `#### `) share their prefix: each
shared prefix is encoded once and kept as a KV cache, and only the cue and the answer are
decoded per probe. Falls back to plain batched generate() for other cache layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from elad_core.explanations.steps import parse_probe_answer
from elad_core.explanations.prompt import ANSWER_CUE
from elad_core.student.decode_common import StopAfterAnswerLine, eos_ids, left_pad
from elad_core.student.decode_loop import SlabLayer
from elad_core.student.sampling import (
    SampleDtype,
    decode_model,
    decode_text,
    greedy_texts,
    length_batches,
)


def probe_answers(
    model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int,
    family: str = "number", progress: bool = False, dtype: SampleDtype = "auto",
) -> list[str | None]:
    """EGSS probes (docs/design.md §2.2): greedy answer after each `probe_prompt`, one per prompt.

    Decodes ≤ max_new_tokens per prompt, a row stops once its answer line is complete; returns
    steps.parse_probe_answer of each continuation (None when unreadable). Probes of one
    explanation share their prefix: each prefix is encoded once (prefix_probe_texts).
    dtype: the weights' dtype while decoding, as for sampling (sampling.decode_dtype; "auto":
    bf16 for a float32 model where the device computes bf16 natively).
    """
    if not prompts:
        return []
    model = decode_model(model, dtype)
    texts = prefix_probe_texts(model, tok, prompts, max_new_tokens, batch_size, progress)
    if texts is None:  # a cache layout the prefix sharing does not handle: plain greedy
        texts = greedy_texts(model, tok, prompts, max_new_tokens, batch_size, progress,
                              "probes", stop_on_answer_line=True)
    return [parse_probe_answer(t, family) for t in texts]


@dataclass
class _ProbePlan:
    """ids: tokens of each probe prompt; base_len: tokens before its cue (`#### `); root: the
    probe whose base extends this base token for token (its cached prefix is reused)."""

    ids: list[list[int]]
    base_len: list[int]
    root: list[int]


def _probe_plan(tok: Any, prompts: list[str]) -> _ProbePlan:
    """Bases end where the `#### ` cue starts (all but the last token when the cue does not
    tokenise apart). Sorted by base string, a prefix is followed by its extensions, so one
    backwards pass chains every base to the longest base that extends it."""
    ids = tok(prompts)["input_ids"]
    keys = [p[: -len(ANSWER_CUE)] if p.endswith(ANSWER_CUE) else None for p in prompts]
    cut = iter(tok([k for k in keys if k is not None])["input_ids"] if any(keys) else [])
    base_len = []
    for n, (x, key) in enumerate(zip(ids, keys, strict=True)):
        b = next(cut) if key is not None else None
        ok = b is not None and 0 < len(b) < len(x) and x[: len(b)] == b
        base_len.append(len(b) if ok else len(x) - 1)
        keys[n] = key if ok else None
    root = list(range(len(prompts)))
    order = sorted((i for i in root if keys[i] is not None), key=lambda i: keys[i])
    for a, b in zip(reversed(order[:-1]), reversed(order[1:])):
        r, n = root[b], base_len[a]
        if keys[b].startswith(keys[a]) and ids[r][:n] == ids[a][:n]:
            root[a] = r
    return _ProbePlan(ids, base_len, root)


def prefix_probe_texts(
    model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int,
    progress: bool = False,
) -> list[str] | None:
    """Greedy continuations (cut at eos) of probe prompts, encoding each shared prefix once.

    The probes of one explanation (question + first i steps) are prefixes of its longest
    probe: that root runs once with its KV cache kept, and each probe decodes only its cue and
    answer on the root's cached keys/values. Same greedy result as decoding each prompt alone
    (up to float rounding). None when the model's cache is not a plain per-layer
    DynamicCache or a prompt has < 2 tokens (the caller then uses plain generate()).
    """
    from transformers import DynamicCache

    plan = _probe_plan(tok, prompts)
    if min(map(len, plan.ids)) < 2:
        return None
    members: dict[int, list[int]] = {}
    for i, r in enumerate(plan.root):
        members.setdefault(r, []).append(i)
    roots = list(members)
    chunks = length_batches([plan.base_len[r] for r in roots], [len(members[r]) for r in roots],
                             batch_size)
    stop = StopAfterAnswerLine(model, tok, 0)
    texts: list[str] = [""] * len(prompts)
    with torch.inference_mode(), tqdm(total=len(prompts), desc="probes", unit="seq",
                                      disable=not progress) as bar:
        for chunk in ([roots[n] for n in c] for c in chunks):
            x, mask = left_pad([plan.ids[r][: plan.base_len[r]] for r in chunk], tok.pad_token_id,
                               model.device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            # logits of one position as an index: a `logits_to_keep=1` slice is a non-contiguous
            # view, on which a bf16 CPU linear broadcast the whole output matrix (decode_loop.py)
            cache = model(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=True,
                          logits_to_keep=torch.tensor([x.shape[1] - 1], device=x.device)).cache
            kv = [(k, v) for k, v, *_ in cache] if isinstance(cache, DynamicCache) else []
            if not kv or any(k.shape[-2] != x.shape[1] for k, _ in kv):
                return None
            slot_of = {r: (n, x.shape[1] - plan.base_len[r]) for n, r in enumerate(chunk)}
            todo = sorted((i for r in chunk for i in members[r]),
                          key=lambda i: len(plan.ids[i]) - plan.base_len[i])  # by cue length
            for start in range(0, len(todo), batch_size):
                part = todo[start:start + batch_size]
                for cue_len in sorted({len(plan.ids[i]) - plan.base_len[i] for i in part}):
                    group = [i for i in part if len(plan.ids[i]) - plan.base_len[i] == cue_len]
                    rows = [(*slot_of[plan.root[i]], plan.base_len[i]) for i in group]
                    cue = [plan.ids[i][plan.base_len[i]:] for i in group]
                    gathered = _gather_prefixes(kv, rows, cue_len + max_new_tokens)
                    for i, g in zip(group, _greedy_on_cache(model, tok, gathered, rows, cue,
                                                             max_new_tokens, stop), strict=True):
                        texts[i] = decode_text(tok, g)
                bar.update(len(part))
    return texts


def _gather_prefixes(kv: list[tuple[torch.Tensor, torch.Tensor]], rows: list[tuple[int, int, int]],
                     room: int) -> Any:
    """A cache holding, per layer, the cached (keys, values) of each row's prefix, left padded
    ((b, H, width, D)), in `decode_loop.SlabLayer`s with `room` positions to decode into (no
    per-token `torch.cat` copy of the whole cache, as a DynamicCache makes).

    rows: (root row in the cache, its left padding, prefix length) per probe.
    """
    from transformers.cache_utils import Cache

    dev = kv[0][0].device
    row, pad, length = (torch.tensor(c, device=dev) for c in zip(*rows, strict=True))
    width = int(length.max())
    slot = torch.arange(width, device=dev)[None, :] - (width - length)[:, None]  # (b, width)
    src = torch.where(slot >= 0, slot + pad[:, None], torch.zeros_like(slot))
    layers = []
    for k, v in kv:
        layer = SlabLayer(width + room)
        layer.update(k[row[:, None], :, src].transpose(1, 2),
                     v[row[:, None], :, src].transpose(1, 2))
        layers.append(layer)
    return Cache(layers=layers)


def _greedy_on_cache(
    model: Any, tok: Any, cache: Any, rows: list[tuple[int, int, int]], cue: list[list[int]],
    max_new_tokens: int, stop: StopAfterAnswerLine,
) -> list[list[int]]:
    """Greedy decode after each row's cached prefix + cue tokens; tokens cut before eos."""
    dev = model.device
    length = torch.tensor([r[2] for r in rows], device=dev)
    width = int(length.max())
    valid = torch.arange(width, device=dev)[None, :] >= (width - length)[:, None]
    inp = torch.tensor(cue, device=dev)  # (b, c)
    mask = torch.cat([valid.long(), torch.ones_like(inp)], dim=1)
    pos = length[:, None] + torch.arange(inp.shape[1], device=dev)[None, :]
    eos = torch.tensor(sorted(eos_ids(model, tok)), device=dev)
    out = torch.zeros((len(rows), 0), dtype=torch.long, device=dev)
    done = torch.zeros(len(rows), dtype=torch.bool, device=dev)
    for _ in range(max_new_tokens):
        last = torch.tensor([inp.shape[1] - 1], device=dev)  # an index: see prefix_probe_texts
        logits = model(input_ids=inp, attention_mask=mask, position_ids=pos,
                       cache=cache, use_cache=True, logits_to_keep=last).logits
        nxt = torch.where(done, eos[0], logits[:, -1].argmax(-1))
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= torch.isin(nxt, eos) | stop(out, None)
        if bool(done.all()):
            break
        inp, pos = nxt[:, None], pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(inp)], dim=1)
    eos_set = set(eos.tolist())
    cuts = [next((j for j, t in enumerate(row) if t in eos_set), len(row)) for row in out.tolist()]
    return [row[:cut] for row, cut in zip(out.tolist(), cuts, strict=True)]
