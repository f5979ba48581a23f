"""The product's own decode loop for plain decoders (issue #21 item 4, docs/design.md §5.8).

`decode_loop` is generate()'s decode loop without its per-call overheads, for decoder-only models
whose every layer is full attention and whose generation config adds no logits processors
(`loop_supported`); sampling.py's `_decode_rows` sends other models through generate(). The K
copies of a prompt share one prefill; keys and values live in slabs allocated once per call
(`SlabLayer`: no per-step concatenation, attention over the filled positions only); a finished
row leaves the batch at once; the next token is drawn by an inverse CDF (one uniform per row)
and its log-prob read from the same logits; with SDPA attention the K copies attend their
prompt's keys as one group (`_shared_prefix_attention`, registered with transformers'
AttentionInterface). decode_common.OPTIONS switches each part off (benchmarks/student_sampling.py
measures each; docs/design.md §5.8 has the results). Same inputs (rows, copies, seed set by the
caller, dtype, threads) → same outputs; tests/student/test_decode_loop.py pins greedy equality
with generate() and plain attention. Also used by probes.py (`SlabLayer` for shared prefixes).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from elad_core.student import decode_common
from elad_core.student.decode_common import (Decoded, StopAfterAnswerLine, cut_at_eos, eos_ids,
                                             left_pad)


class SlabLayer(DynamicLayer):
    """One layer's keys / values in a slab allocated once per call, (rows, heads, max_len, dim).

    `update` writes the new positions in place and returns views of the filled part: no
    `torch.cat` copy of the whole cache per token (DynamicCache), and attention runs over
    the filled length only, not over the full preallocated length (StaticCache). Rows can be
    repeated (one prefill for K copies) and dropped (finished rows) in place.
    """

    is_croppable = False

    def __init__(self, max_len: int):
        super().__init__()
        self.max_len, self.rows, self.length = max_len, 0, 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.rows = key_states.shape[0]
        self.k_slab = key_states.new_empty((*key_states.shape[:2], self.max_len,
                                            key_states.shape[3]))
        self.v_slab = value_states.new_empty((*value_states.shape[:2], self.max_len,
                                              value_states.shape[3]))
        self.is_initialized = True

    def _views(self) -> None:
        self.keys = self.k_slab[: self.rows, :, : self.length]
        self.values = self.v_slab[: self.rows, :, : self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.max_len:
            raise RuntimeError(f"decode cache holds {self.max_len} positions, {end} asked")
        self.k_slab[: self.rows, :, self.length:end] = key_states
        self.v_slab[: self.rows, :, self.length:end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.prefix_len + self.length

    prefix_len = 0  # > 0 after split_prefix: positions held once per prompt in prefix_k / _v

    def split_prefix(self, copies: int, max_new: int) -> None:
        """Keep the prompts' keys / values once per prompt (`prefix_k`, `prefix_v`: (prompts,
        heads, width, dim)) and decode into a fresh slab of `copies` rows per prompt; `update`
        then returns the generated positions only (`_shared_prefix_attention` adds the prefix)."""
        self.prefix_k = self.k_slab[: self.rows, :, : self.length].contiguous()
        self.prefix_v = self.v_slab[: self.rows, :, : self.length].contiguous()
        self.prefix_len, self.prompts = self.length, self.rows
        self.rows, self.length, self.max_len = self.rows * copies, 0, max_new
        self.k_slab = self.k_slab.new_empty((self.rows, self.k_slab.shape[1], max_new,
                                             self.k_slab.shape[3]))
        self.v_slab = self.v_slab.new_empty((self.rows, self.v_slab.shape[1], max_new,
                                             self.v_slab.shape[3]))
        self._views()

    def move_prefixes(self, dst: torch.Tensor, src: torch.Tensor, prompts: int) -> None:
        """Prompts `src` overwrite prompts `dst`; the first `prompts` prompts remain."""
        if len(dst):
            self.prefix_k[dst] = self.prefix_k[src]
            self.prefix_v[dst] = self.prefix_v[src]
        self.prompts = prompts

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Row r becomes rows r*repeats .. r*repeats + repeats - 1 (copies of one prefill)."""
        for name in ("k_slab", "v_slab"):
            slab = getattr(self, name)
            new = slab.new_empty((self.rows * repeats, *slab.shape[1:]))
            new.view(self.rows, repeats, *slab.shape[1:])[:, :, :, : self.length] = (
                slab[: self.rows, None, :, : self.length])
            setattr(self, name, new)
        self.rows *= repeats
        self._views()

    def move_rows(self, dst: torch.Tensor, src: torch.Tensor, rows: int) -> None:
        """Rows `src` overwrite rows `dst`; the first `rows` rows remain."""
        if len(dst):
            self.k_slab[dst, :, : self.length] = self.k_slab[src, :, : self.length]
            self.v_slab[dst, :, : self.length] = self.v_slab[src, :, : self.length]
        self.rows = rows
        self._views()


# generation_config fields that make generate() transform the logits (or stop) beyond
# temperature sampling / greedy; with any of them set, sampling._decode_rows uses generate() itself
_PROCESSOR_FIELDS = {
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "min_length": 0, "min_new_tokens": None, "sequence_bias": None, "guidance_scale": None,
    "exponential_decay_length_penalty": None, "renormalize_logits": False,
    "watermarking_config": None, "stop_strings": None, "max_time": None,
}


def loop_supported(model: Any) -> bool:
    """Whether `decode_loop` decodes `model` as generate() would: a decoder whose every layer
    is full attention with a per-layer key/value cache, and a generation config without
    logits processors of its own (temperature / greedy only)."""
    from transformers.cache_utils import get_layer_types_and_kwargs

    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return False
    if not getattr(model, "_supports_default_dynamic_cache", lambda: True)():
        return False
    try:
        types, _ = get_layer_types_and_kwargs(config.get_text_config(decoder=True))
    except Exception:  # noqa: BLE001 - an unusual config: leave it to generate()
        return False
    if not types or any(t != "full_attention" for t in types):
        return False
    gc = model.generation_config
    return all(_neutral(getattr(gc, f, None), default) for f, default in _PROCESSOR_FIELDS.items())


def _neutral(value: Any, default: Any) -> bool:
    return value is None or value == default or (not value and default in (0, None, False))


def _next_tokens(logits: torch.Tensor, temperature: float | None, logprobs: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Next token of each row: greedy (temperature None) or sampled at `temperature` (pure
    ancestral sampling), and its log-probability under the untempered model when asked."""
    logits = logits.float()
    if temperature is None:
        nxt = logits.argmax(-1)
    elif decode_common.OPTIONS.sampler == "multinomial":
        nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1).squeeze(1)
    else:
        nxt = _sample_inverse_cdf(logits, temperature)
    if not logprobs:
        return nxt, None
    return nxt, logits.gather(-1, nxt[:, None]).squeeze(1) - torch.logsumexp(logits, -1)


_CDF_BLOCK = 256


def _sample_inverse_cdf(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """One token per row from softmax(logits / temperature), with one uniform per row.

    The same distribution as torch.multinomial, which draws an exponential variate per
    vocabulary entry (3.1M per step for 64 rows x 49k entries: 0.2 s of a step on one CPU
    core). The CDF is inverted in two levels (blocks of 256 entries, then within the chosen
    block; cumulative sums in float64), so no full-length sequential cumsum is needed. Entries
    of probability 0 are never chosen.
    """
    rows, vocab = logits.shape
    w = torch.softmax(logits / temperature, -1)
    if vocab % _CDF_BLOCK:
        w = torch.nn.functional.pad(w, (0, _CDF_BLOCK - vocab % _CDF_BLOCK))
    blocks = w.view(rows, -1, _CDF_BLOCK)
    mass = blocks.sum(-1).double()  # (rows, n_blocks)
    cum = mass.cumsum(-1)
    u = torch.rand((rows, 1), dtype=torch.float64, device=logits.device) * cum[:, -1:]
    idx = torch.arange(mass.shape[1], device=logits.device)
    last = torch.where(mass > 0, idx, 0).amax(-1, keepdim=True)  # last block with mass
    j = torch.minimum(torch.searchsorted(cum, u, right=True), last)  # (rows, 1)
    inner = blocks.gather(1, j[:, :, None].expand(-1, 1, _CDF_BLOCK)).squeeze(1)  # (rows, 256)
    below = cum.gather(1, j) - mass.gather(1, j)
    icum = inner.cumsum(-1, dtype=torch.float64) + below
    pos = torch.arange(_CDF_BLOCK, device=logits.device)
    ilast = torch.where(inner > 0, pos, 0).amax(-1, keepdim=True)
    i = torch.minimum(torch.searchsorted(icum, u, right=True), ilast)
    return (j * _CDF_BLOCK + i).squeeze(1)


_SHARED_ATTN = "elad_shared_prefix"


@dataclass
class _SharedPrefix:
    """What `_shared_prefix_attention` reads during one `decode_loop` call.

    group / copy: prompt (row of the prefix slabs) and copy index of each batch row.
    calls / unsupported: checked after the prefill (which goes to SDPA): every layer came
    through the attention interface, and none uses a feature the decode path lacks.
    """

    layers: list[Any]
    copies: int
    group: torch.Tensor | None = None
    copy: torch.Tensor | None = None
    active: bool = False
    calls: int = 0
    unsupported: bool = False


_SHARED: contextvars.ContextVar[_SharedPrefix | None] = contextvars.ContextVar(_SHARED_ATTN,
                                                                              default=None)


def _shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor,
                             value: torch.Tensor, attention_mask: torch.Tensor | None,
                             dropout: float = 0.0, scaling: float | None = None, **kwargs: Any):
    """Decode-step attention where the K copies of a prompt share its cached keys / values.

    The copies' queries attend the prompt's keys as one group (K x query heads per key head:
    one (K*g x dim) @ (dim x width) product per prompt and key head instead of K (g x dim) ones
    each reading the same keys), and each row's own generated positions (`key` / `value` as
    the `SlabLayer` returns them) separately; one softmax over both. The same attention as
    SDPA over the concatenated cache, computed in another order (float32 softmax). Prefill
    (more than one query position) and anything outside `decode_loop` go to SDPA.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    ctx = _SHARED.get()
    if ctx is None or not ctx.active or query.shape[2] != 1:
        if ctx is not None:
            ctx.calls += 1
            ctx.unsupported |= (kwargs.get("softcap") is not None
                                or kwargs.get("sliding_window") is not None
                                or kwargs.get("position_bias") is not None
                                or getattr(module, "sinks", None) is not None
                                or not isinstance(getattr(module, "layer_idx", None), int))
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    layer = ctx.layers[module.layer_idx]
    rows, heads, _, dim = query.shape
    kp, vp = layer.prefix_k[: layer.prompts], layer.prefix_v[: layer.prompts]
    prompts, kv_heads, width, _ = kp.shape
    g, k = heads // kv_heads, ctx.copies
    q = query.reshape(rows, kv_heads, g, dim)
    slot = ctx.group * k + ctx.copy

    def grouped(x: torch.Tensor) -> torch.Tensor:  # (rows, kv, g, n) -> (prompts*kv, k*g, n)
        full = x.new_zeros((prompts * k, kv_heads, g, x.shape[-1]))
        full[slot] = x
        return full.view(prompts, k, kv_heads, g, -1).transpose(1, 2).reshape(
            prompts * kv_heads, k * g, -1)

    def per_row(x: torch.Tensor) -> torch.Tensor:  # inverse of grouped
        return x.view(prompts, kv_heads, k, g, -1).transpose(1, 2).reshape(
            prompts * k, kv_heads, g, -1)[slot]

    scores = torch.cat([
        per_row(torch.bmm(grouped(q), kp.view(prompts * kv_heads, width, dim).transpose(1, 2))),
        torch.matmul(q, key.transpose(-1, -2)),
    ], dim=-1).float() * (scaling if scaling is not None else dim ** -0.5)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    probs = scores.softmax(-1).to(value.dtype)
    out = per_row(torch.bmm(grouped(probs[..., :width]), vp.view(prompts * kv_heads, width, dim)))
    out = out + torch.matmul(probs[..., width:], value)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None


def _register_shared_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(_SHARED_ATTN, _shared_prefix_attention)
    AttentionMaskInterface.register(_SHARED_ATTN, sdpa_mask)  # the masks SDPA gets


def decode_loop(
    model: Any, tok: Any, rows: list[list[int]], copies: int, gen_kwargs: dict[str, Any],
    logprobs: bool, stop_on_answer_line: bool,
) -> list[Decoded]:
    """The decode loop of generate() for plain decoders, without its per-call overheads.

    - The prompts are encoded once and their cache rows repeated for the K copies
      (`share_prefill`): prefill was as costly as decoding for K = 4.
    - Keys / values live in `SlabLayer`s: no per-token copy, attention over filled positions.
    - With K copies and SDPA attention, a prompt's keys / values are kept once and its copies
      attend them as one group (`_shared_prefix_attention`, `shared_attention`): decode
      attention read every copy's prompt keys separately, ~40% of a step at batch 64.
    - A finished row leaves the batch at once (`compact`): its slot is filled by the last
      live row (only those rows' cache moves), so steps cost what the live rows need.
    - Next tokens and log-probs come from `_next_tokens` on each step's logits: no stored
      (rows x steps x vocabulary) logits and no log_softmax over all of them afterwards.
    Same inputs (rows, copies, seed set by the caller, dtype, threads) → same outputs.
    """
    from transformers.cache_utils import Cache, get_layer_types_and_kwargs

    dev = model.device
    max_new = int(gen_kwargs["max_new_tokens"])
    temperature = gen_kwargs.get("temperature", 1.0) if gen_kwargs.get("do_sample") else None
    eos_list = sorted(eos_ids(model, tok))
    share = copies if decode_common.OPTIONS.share_prefill else 1
    if share == 1 and copies > 1:
        rows = [r for r in rows for _ in range(copies)]
    ids, mask = left_pad(rows, tok.pad_token_id, dev)
    n_layers = len(get_layer_types_and_kwargs(model.config.get_text_config(decoder=True))[0])
    cache = Cache(layers=[SlabLayer(ids.shape[1] + max_new) for _ in range(n_layers)])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)

    def forward(x: torch.Tensor, m: torch.Tensor, p: torch.Tensor, keep: Any = 1) -> torch.Tensor:
        return model(input_ids=x, attention_mask=m, position_ids=p, cache=cache, use_cache=True,
                     logits_to_keep=keep).logits[:, -1]

    ctx = None
    own_attn = model.config._attn_implementation
    if decode_common.OPTIONS.shared_attention and share > 1 and own_attn == "sdpa":
        _register_shared_attention()
        ctx = _SharedPrefix(cache.layers, share)
    token = _SHARED.set(ctx)
    try:
        if ctx is not None:
            model.config._attn_implementation = _SHARED_ATTN
        return _decode_steps(forward, cache, ctx, ids, mask, pos, share, max_new, temperature,
                             logprobs, eos_list, stop_on_answer_line, model, tok, n_layers)
    finally:
        model.config._attn_implementation = own_attn
        _SHARED.reset(token)


def _decode_steps(forward: Any, cache: Any, ctx: _SharedPrefix | None, ids: torch.Tensor,
                  mask: torch.Tensor, pos: torch.Tensor, share: int, max_new: int,
                  temperature: float | None, logprobs: bool, eos_list: list[int],
                  stop_on_answer_line: bool, model: Any, tok: Any, n_layers: int
                  ) -> list[Decoded]:
    """`decode_loop`'s prefill and steps (with `ctx`: shared-prefix attention when the
    prefill showed every layer can use it)."""
    dev = ids.device
    eos = torch.tensor(eos_list, device=dev)
    # the last position as an index tensor, not `logits_to_keep=1`: the slice of a longer
    # prompt is a non-contiguous (rows, 1, hidden) view, and a bf16 linear on it broadcast the
    # whole output matrix per row on CPU (2 s instead of 12 ms for 16 rows, measured here)
    logits = forward(ids, mask, pos, torch.tensor([ids.shape[1] - 1], device=dev))
    pos = pos[:, -1:]
    if ctx is not None and (ctx.unsupported or ctx.calls != n_layers):
        model.config._attn_implementation = "sdpa"  # plain slabs for this call
        ctx = None
    if share > 1:
        if ctx is not None:
            for layer in cache.layers:
                layer.split_prefix(share, max_new)
            prompts = ids.shape[0]
            ctx.group = torch.arange(prompts, device=dev).repeat_interleave(share)
            ctx.copy = torch.arange(share, device=dev).repeat(prompts)
            ctx.active = True
        else:
            for layer in cache.layers:
                layer.batch_repeat_interleave(share)
        logits, mask, pos = (t.repeat_interleave(share, dim=0) for t in (logits, mask, pos))
    n = logits.shape[0]
    slot = torch.arange(n, device=dev)  # output row of each batch row
    out = torch.full((n, max_new), eos_list[0], dtype=torch.long, device=dev)
    lps = torch.zeros((n, max_new), device=dev) if logprobs else None
    live = torch.ones(n, dtype=torch.bool, device=dev)  # batch rows not finished (no compact)
    stop = StopAfterAnswerLine(model, tok, 0) if stop_on_answer_line else None
    for step in range(max_new):
        nxt, lp = _next_tokens(logits, temperature, logprobs)
        if not decode_common.OPTIONS.compact:
            nxt = torch.where(live, nxt, eos[0])  # finished rows: eos (not recorded)
        out[slot[live], step] = nxt[live]
        if lps is not None:
            lps[slot[live], step] = lp[live]
        done = torch.isin(nxt, eos) | ~live
        if stop is not None:
            done |= stop(out[slot, : step + 1], None)
        if step + 1 == max_new or bool(done.all()):
            break
        if decode_common.OPTIONS.compact and bool(done.any()):
            keep = int((~done).sum())
            dst = done[:keep].nonzero().squeeze(1)  # finished rows among the first `keep`
            src = (~done[keep:]).nonzero().squeeze(1) + keep  # live rows after them
            for layer in cache.layers:
                layer.move_rows(dst, src, keep)
            order = torch.arange(keep, device=dev)
            order[dst] = src
            slot, mask, pos, nxt = slot[order], mask[order], pos[order], nxt[order]
            live = live[order]
            if ctx is not None:
                ctx.group, ctx.copy = ctx.group[order], ctx.copy[order]
                _drop_finished_prompts(ctx)
        elif not decode_common.OPTIONS.compact:
            live = ~done
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        pos = pos + 1
        logits = forward(nxt[:, None], mask, pos)
    return cut_at_eos(out.tolist(), None if lps is None else lps.tolist(), set(eos_list))


def _drop_finished_prompts(ctx: _SharedPrefix) -> None:
    """Prompts none of whose copies decode any more leave the prefix slabs (the last live
    prompts fill their places), so the grouped attention reads only live prompts' keys."""
    prompts = ctx.layers[0].prompts
    used = torch.zeros(prompts, dtype=torch.bool, device=ctx.group.device)
    used[ctx.group] = True
    keep = int(used.sum())
    if keep == prompts:
        return
    dst = (~used[:keep]).nonzero().squeeze(1)
    src = used[keep:].nonzero().squeeze(1) + keep
    for layer in ctx.layers:
        layer.move_prefixes(dst, src, keep)
    remap = torch.arange(prompts, device=used.device)
    remap[src] = dst
    ctx.group = remap[ctx.group]
