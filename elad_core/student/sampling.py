"""Batched decoding with the student: K sampled explanations, EGSS answer probes, greedy answers.

Source: docs/design.md §2 step 1 (K explanations at temperature τ), §2.2 (EGSS probes: question +
first i steps + `#### `, greedy, ≤ 8 tokens; `self_confidence` needs answer-token log-probs).
Prompts are sorted by token length and left padded so one decode batch serves many prompts
with little padding; results come back in input order. EGSS probes of one explanation share
their prefix, so each prefix is encoded once and only the cue + answer is decoded per probe.
Plain decoders decode in `_decode_loop` (shared prefill of the K copies, slab KV cache,
finished rows dropped, inverse-CDF sampling, shared-prompt attention; issue #21 item 4,
benchmarks/student_sampling.py), other models through generate() (`_decode_generate`).
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from tqdm.auto import tqdm
from transformers import StaticCache, StoppingCriteria, StoppingCriteriaList
from transformers.cache_utils import DynamicLayer

from elad_core.explanations.answers import ANSWER_MARK, parse_answer
from elad_core.explanations.prompt import student_prompt
from elad_core.explanations.records import Sample


@dataclass
class _Decoded:
    ids: list[int]  # generated tokens, cut before the first eos
    n_new_tokens: int  # generated tokens, eos included
    logprobs: list[float] | None  # log p of each token in `ids` (untempered), when asked


def _eos_ids(model: Any, tok: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    return ids | {tok.eos_token_id} - {None}


def _batch_seed(seed: int, keys: list[str]) -> int:
    digest = hashlib.sha256(f"{seed}|{'|'.join(keys)}".encode()).hexdigest()
    return int(digest[:15], 16)


def _length_batches(lengths: list[int], group: list[int], batch_size: int) -> list[list[int]]:
    """Indices 0..n-1 sorted by length, chunked so each chunk has ≤ batch_size rows in total.

    group[i]: rows item i occupies (K samples; a probe root's probes; else 1); never split.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = [[]]
    rows = 0
    for i in order:
        if batches[-1] and rows + group[i] > batch_size:
            batches.append([])
            rows = 0
        batches[-1].append(i)
        rows += group[i]
    return [b for b in batches if b]


def _left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


class _StopAfterAnswerLine(StoppingCriteria):
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


# ------------------------------------------------------------------ decode internals
# How `_decode_rows` decodes. Defaults are the product's; benchmarks/student_sampling.py swaps
# in other values to measure each choice (the old path is engine="generate", share_prefill
# False, compact False, sampler "multinomial"). Not a user option: results depend on them.
@dataclass(frozen=True)
class _DecodeOptions:
    engine: str = "loop"  # "loop": _decode_loop where the model allows it; "generate": generate()
    generate_cache: str = "static"  # generate() engine: a fresh "static" cache or "dynamic"
    share_prefill: bool = True  # loop: encode each prompt once for its K copies
    compact: bool = True  # loop: drop finished rows from the batch (and their cache rows)
    sampler: str = "cdf"  # loop: "cdf" (inverse CDF, 1 uniform per row) or "multinomial"
    shared_attention: bool = True  # loop: the K copies attend their prompt's keys as one group


_OPTIONS = _DecodeOptions()

SampleDtype = Literal["auto", "bf16", "fp32"]
_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def decode_dtype(model: Any, setting: SampleDtype = "auto") -> torch.dtype:
    """The weight dtype sampling decodes with (StudentConfig.sample_dtype).

    "bf16" / "fp32": that dtype. "auto": bf16 for a float32 model on a device that computes
    bf16 natively (precision.native_bf16: AVX512-BF16 / AMX CPUs, bf16 GPUs), else the model's
    own dtype; never emulated bf16 (10x slower on an AVX2-only CPU, precision.py).
    """
    if setting not in ("auto", "bf16", "fp32"):
        raise ValueError(f"sample dtype {setting!r}: choose auto, bf16 or fp32")
    if setting != "auto":
        return _DTYPES[setting]
    from elad_core.student.precision import native_bf16

    own = model.dtype
    return torch.bfloat16 if own == torch.float32 and native_bf16(str(model.device)) else own


def _decode_model(model: Any, setting: SampleDtype) -> Any:
    """`model` itself when it already has the decode dtype, else a copy with its floating-point
    parameters cast to it (buffers, e.g. rotary frequencies, stay as they are, as when a model
    is loaded in that dtype). Made per call and dropped after it: the caller's model (used for
    embeddings, evaluation, training) is never changed, and there is no cache to go stale."""
    dtype = decode_dtype(model, setting)
    if model.dtype == dtype:
        return model
    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(p.detach().to(dtype), requires_grad=False)
        for p in model.parameters() if p.is_floating_point()
    }  # tied weights are one Parameter: they stay tied in the copy
    twin = copy.deepcopy(model, memo)
    return twin.eval()


class _SlabLayer(DynamicLayer):
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
# temperature sampling / greedy; with any of them set, _decode_rows uses generate() itself
_PROCESSOR_FIELDS = {
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "min_length": 0, "min_new_tokens": None, "sequence_bias": None, "guidance_scale": None,
    "exponential_decay_length_penalty": None, "renormalize_logits": False,
    "watermarking_config": None, "stop_strings": None, "max_time": None,
}


def _loop_supported(model: Any) -> bool:
    """Whether `_decode_loop` decodes `model` as generate() would: a decoder whose every layer
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


def _decode_rows(
    model: Any, tok: Any, rows: list[list[int]], gen_kwargs: dict[str, Any], logprobs: bool,
    stop_on_answer_line: bool = False, copies: int = 1,
) -> list[_Decoded]:
    """Decode each of `rows` `copies` times (output r*copies + c: copy c of row r), in one batch;
    outputs cut at the first eos. `_decode_loop` where the model allows it, else generate()."""
    if _OPTIONS.engine == "loop" and _loop_supported(model):
        return _decode_loop(model, tok, rows, copies, gen_kwargs, logprobs, stop_on_answer_line)
    return _decode_generate(model, tok, [r for r in rows for _ in range(copies)], gen_kwargs,
                            logprobs, stop_on_answer_line)


def _next_tokens(logits: torch.Tensor, temperature: float | None, logprobs: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Next token of each row: greedy (temperature None) or sampled at `temperature` (pure
    ancestral sampling), and its log-probability under the untempered model when asked."""
    logits = logits.float()
    if temperature is None:
        nxt = logits.argmax(-1)
    elif _OPTIONS.sampler == "multinomial":
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
    """What `_shared_prefix_attention` reads during one `_decode_loop` call.

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
    the `_SlabLayer` returns them) separately; one softmax over both. The same attention as
    SDPA over the concatenated cache, computed in another order (float32 softmax). Prefill
    (more than one query position) and anything outside `_decode_loop` go to SDPA.
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


def _decode_loop(
    model: Any, tok: Any, rows: list[list[int]], copies: int, gen_kwargs: dict[str, Any],
    logprobs: bool, stop_on_answer_line: bool,
) -> list[_Decoded]:
    """The decode loop of generate() for plain decoders, without its per-call overheads.

    - The prompts are encoded once and their cache rows repeated for the K copies
      (`share_prefill`): prefill was as costly as decoding for K = 4.
    - Keys / values live in `_SlabLayer`s: no per-token copy, attention over filled positions.
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
    eos_list = sorted(_eos_ids(model, tok))
    share = copies if _OPTIONS.share_prefill else 1
    if share == 1 and copies > 1:
        rows = [r for r in rows for _ in range(copies)]
    ids, mask = _left_pad(rows, tok.pad_token_id, dev)
    n_layers = len(get_layer_types_and_kwargs(model.config.get_text_config(decoder=True))[0])
    cache = Cache(layers=[_SlabLayer(ids.shape[1] + max_new) for _ in range(n_layers)])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)

    def forward(x: torch.Tensor, m: torch.Tensor, p: torch.Tensor, keep: Any = 1) -> torch.Tensor:
        return model(input_ids=x, attention_mask=m, position_ids=p, cache=cache, use_cache=True,
                     logits_to_keep=keep).logits[:, -1]

    ctx = None
    own_attn = model.config._attn_implementation
    if _OPTIONS.shared_attention and share > 1 and own_attn == "sdpa":
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
                  ) -> list[_Decoded]:
    """`_decode_loop`'s prefill and steps (with `ctx`: shared-prefix attention when the
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
    stop = _StopAfterAnswerLine(model, tok, 0) if stop_on_answer_line else None
    for step in range(max_new):
        nxt, lp = _next_tokens(logits, temperature, logprobs)
        if not _OPTIONS.compact:
            nxt = torch.where(live, nxt, eos[0])  # finished rows: eos (not recorded)
        out[slot[live], step] = nxt[live]
        if lps is not None:
            lps[slot[live], step] = lp[live]
        done = torch.isin(nxt, eos) | ~live
        if stop is not None:
            done |= stop(out[slot, : step + 1], None)
        if step + 1 == max_new or bool(done.all()):
            break
        if _OPTIONS.compact and bool(done.any()):
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
        elif not _OPTIONS.compact:
            live = ~done
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        pos = pos + 1
        logits = forward(nxt[:, None], mask, pos)
    return _cut_at_eos(out.tolist(), None if lps is None else lps.tolist(), set(eos_list))


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


def _cut_at_eos(new: list[list[int]], lps: list[list[float]] | None, eos: set[int]
                ) -> list[_Decoded]:
    decoded = []
    for r, ids in enumerate(new):
        cut = next((j for j, t in enumerate(ids) if t in eos), None)
        n_new = len(ids) if cut is None else cut + 1
        ids = ids if cut is None else ids[:cut]
        decoded.append(_Decoded(ids, n_new, None if lps is None else lps[r][: len(ids)]))
    return decoded


def _decode_generate(
    model: Any, tok: Any, rows: list[list[int]], gen_kwargs: dict[str, Any], logprobs: bool,
    stop_on_answer_line: bool = False,
) -> list[_Decoded]:
    """One generate() call over left-padded `rows`; outputs cut at the first eos (models
    `_decode_loop` does not handle, e.g. sliding-window or recurrent layers).

    The KV cache is a transformers `StaticCache` made for this call (prompt + max_new_tokens):
    the default dynamic cache grows by `torch.cat` every step, which copies the whole cache
    each token and made a 256-row call 2.9x slower (7.3 vs 21.3 explanations/s, one CPU
    thread, measured here). A fresh cache per call, not `cache_implementation="static"`:
    generate() would reuse the longest cache of earlier calls, and attention over a longer
    padded cache rounds differently, so a shard's samples would depend on which calls the
    process made before it (a resumed run or a Dask worker would sample differently; caught
    by tests/flows/test_scale_out.py and tests/flows/test_crash_resume.py).
    `disable_compile`: no automatic torch.compile on GPUs (one compile per batch shape).
    """
    input_ids, mask = _left_pad(rows, tok.pad_token_id, model.device)
    if (getattr(model, "_supports_default_dynamic_cache", lambda: True)()
            and _OPTIONS.generate_cache == "static"):
        extra = {"cache": StaticCache(
            config=model.config, max_cache_len=input_ids.shape[1] + gen_kwargs["max_new_tokens"])}
    else:  # models that manage their own state (e.g. Mamba): generate()'s default
        extra = {}
    if stop_on_answer_line:
        extra["stopping_criteria"] = StoppingCriteriaList(
            [_StopAfterAnswerLine(model, tok, input_ids.shape[1])]
        )
    out = model.generate(
        input_ids=input_ids, attention_mask=mask, pad_token_id=tok.pad_token_id,
        eos_token_id=sorted(_eos_ids(model, tok)), return_dict_in_generate=True,
        output_logits=logprobs, disable_compile=True, **gen_kwargs, **extra,
    )
    new = out.sequences[:, input_ids.shape[1]:].tolist()
    lps = None
    if logprobs:
        lps = model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        lps = lps.float().tolist()
    return _cut_at_eos(new, lps, _eos_ids(model, tok))

def _decode_text(tok: Any, ids: list[int]) -> str:
    return tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def answer_span(text: str) -> tuple[int, int] | None:
    """Character span [start, end) of the answer after the last `####` (as parse_answer reads it)."""
    idx = text.rfind(ANSWER_MARK)
    if idx < 0:
        return None
    after = text[idx + len(ANSWER_MARK):]
    start = idx + len(ANSWER_MARK) + len(after) - len(after.lstrip())
    line = after.lstrip().split("\n", 1)[0].rstrip()
    return (start, start + len(line)) if line else None


def answer_logprob(tok: Any, ids: list[int], logprobs: list[float], text: str) -> float | None:
    """Mean log-prob (nats) of the generated tokens overlapping the answer's character span.

    Token character offsets come from decoding prefixes of `ids`, walking back from the end
    (answers are the last few tokens), so any tokenizer works. None when there is no answer.
    """
    span = answer_span(text)
    if span is None:
        return None
    a0, a1 = span
    picked: list[float] = []
    end = len(text)
    for j in range(len(ids) - 1, -1, -1):
        start = len(_decode_text(tok, ids[:j]))
        if start < a1 and end > a0 and end > start:
            picked.append(logprobs[j])
        if start <= a0:
            break
        end = start
    return sum(picked) / len(picked) if picked else None


def sample_explanations(
    model: Any, tok: Any, question_ids: list[str], questions: list[str], k: int,
    temperature: float, max_new_tokens: int, batch_size: int, seed: int,
    family: str = "number", progress: bool = False, template: str | None = None,
    dtype: SampleDtype = "auto",
) -> list[Sample]:
    """K sampled explanations per question (docs/design.md §2 step 1), ordered by question then index.

    Returns len(questions) * k Samples. Each decode batch holds up to `batch_size` sequences
    (at least one question's K). Pure ancestral sampling at `temperature` (top_k 0, top_p 1).
    answer_logprob: mean natural-log probability, under the untempered model, of the tokens
    of the answer after the last `####`; None when no answer was parsed. Each call is seeded
    from `seed` and the ids of the questions in it: same inputs + seed → identical output.
    template: the student's chat prompt template (prompts.student_prompt), None: plain format.
    dtype: the weights' dtype while decoding (StudentConfig.sample_dtype, `decode_dtype`):
    "auto" decodes a float32 model in bf16 where the device computes bf16 natively.
    """
    prompts = [tok(student_prompt(q, template))["input_ids"] for q in questions]
    if len(prompts) != len(question_ids):
        raise ValueError(f"{len(question_ids)} question ids for {len(questions)} questions")
    batches = _length_batches([len(p) for p in prompts], [k] * len(prompts), batch_size)
    gen_kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                      max_new_tokens=max_new_tokens)
    by_question: dict[int, list[Sample]] = {}
    model = _decode_model(model, dtype)
    bar = tqdm(total=len(prompts) * k, desc="sampling", unit="seq", disable=not progress)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        for batch in batches:
            torch.manual_seed(_batch_seed(seed, [question_ids[i] for i in batch]))
            decoded = _decode_rows(model, tok, [prompts[i] for i in batch], gen_kwargs,
                                   logprobs=True, copies=k)
            for n, i in enumerate(batch):
                by_question[i] = [
                    _to_sample(tok, question_ids[i], s, d, family)
                    for s, d in enumerate(decoded[n * k:(n + 1) * k])
                ]
            bar.update(len(batch) * k)
    bar.close()
    return [s for i in range(len(prompts)) for s in by_question[i]]


def _to_sample(tok: Any, question_id: str, index: int, d: _Decoded, family: str) -> Sample:
    text = _decode_text(tok, d.ids)
    parsed = parse_answer(text, family)
    lp = None
    if parsed.answer is not None and d.logprobs is not None:
        lp = answer_logprob(tok, d.ids, d.logprobs, text)
        lp = lp if lp is None or math.isfinite(lp) else None
    return Sample(question_id, index, text, parsed.answer, parsed.status, lp, d.n_new_tokens)


def _greedy_texts(
    model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int,
    progress: bool, desc: str, stop_on_answer_line: bool = False,
) -> list[str]:
    ids = [tok(p)["input_ids"] for p in prompts]
    batches = _length_batches([len(x) for x in ids], [1] * len(ids), batch_size)
    texts: list[str] = [""] * len(ids)
    gen_kwargs = dict(do_sample=False, max_new_tokens=max_new_tokens)
    bar = tqdm(total=len(ids), desc=desc, unit="seq", disable=not progress)
    with torch.inference_mode():
        for batch in batches:
            decoded = _decode_rows(model, tok, [ids[i] for i in batch], gen_kwargs,
                                   logprobs=False, stop_on_answer_line=stop_on_answer_line)
            for i, d in zip(batch, decoded, strict=True):
                texts[i] = _decode_text(tok, d.ids)
            bar.update(len(batch))
    bar.close()
    return texts


def greedy_explanations(
    model: Any, tok: Any, questions: list[str], max_new_tokens: int, batch_size: int,
    progress: bool = False, template: str | None = None,
) -> list[str]:
    """Greedy explanation (text after the student prompt, cut at eos) for each question.
    template: the student's chat prompt template (prompts.student_prompt), None: plain format."""
    prompts = [student_prompt(q, template) for q in questions]
    return _greedy_texts(model, tok, prompts, max_new_tokens, batch_size, progress, "greedy")
