"""Batched decoding with the student: K sampled explanations, EGSS answer probes, greedy answers.

Source: docs/design.md §2 step 1 (K explanations at temperature τ), §2.2 (EGSS probes: question +
first i steps + `#### `, greedy, ≤ 8 tokens; `self_confidence` needs answer-token log-probs).
Prompts are sorted by token length and left padded so one decode batch serves many prompts
with little padding; results come back in input order. EGSS probes of one explanation share
their prefix, so each prefix is encoded once and only the cue + answer is decoded per probe.
Plain decoders decode in decode_loop.py's `decode_loop` (shared prefill of the K copies, slab KV
cache, finished rows dropped, inverse-CDF sampling, shared-prompt attention; issue #21 item 4,
benchmarks/student_sampling.py), other models through generate() (`_decode_generate`).
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any, Literal

import torch
from tqdm.auto import tqdm
from transformers import StaticCache, StoppingCriteriaList

from elad_core.explanations.answers import ANSWER_MARK, parse_answer
from elad_core.explanations.prompt import student_prompt
from elad_core.explanations.records import Sample
from elad_core.student import decode_common
from elad_core.student.decode_common import (Decoded, StopAfterAnswerLine, cut_at_eos, eos_ids,
                                             left_pad)
from elad_core.student.decode_loop import decode_loop, loop_supported


def _batch_seed(seed: int, keys: list[str]) -> int:
    digest = hashlib.sha256(f"{seed}|{'|'.join(keys)}".encode()).hexdigest()
    return int(digest[:15], 16)


def length_batches(lengths: list[int], group: list[int], batch_size: int) -> list[list[int]]:
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


def decode_model(model: Any, setting: SampleDtype) -> Any:
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


def _decode_rows(
    model: Any, tok: Any, rows: list[list[int]], gen_kwargs: dict[str, Any], logprobs: bool,
    stop_on_answer_line: bool = False, copies: int = 1,
) -> list[Decoded]:
    """Decode each of `rows` `copies` times (output r*copies + c: copy c of row r), in one batch;
    outputs cut at the first eos. `decode_loop` where the model allows it, else generate()."""
    if decode_common.OPTIONS.engine == "loop" and loop_supported(model):
        return decode_loop(model, tok, rows, copies, gen_kwargs, logprobs, stop_on_answer_line)
    return _decode_generate(model, tok, [r for r in rows for _ in range(copies)], gen_kwargs,
                            logprobs, stop_on_answer_line)


def _decode_generate(
    model: Any, tok: Any, rows: list[list[int]], gen_kwargs: dict[str, Any], logprobs: bool,
    stop_on_answer_line: bool = False,
) -> list[Decoded]:
    """One generate() call over left-padded `rows`; outputs cut at the first eos (models
    `decode_loop` does not handle, e.g. sliding-window or recurrent layers).

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
    input_ids, mask = left_pad(rows, tok.pad_token_id, model.device)
    if (getattr(model, "_supports_default_dynamic_cache", lambda: True)()
            and decode_common.OPTIONS.generate_cache == "static"):
        extra = {"cache": StaticCache(
            config=model.config, max_cache_len=input_ids.shape[1] + gen_kwargs["max_new_tokens"])}
    else:  # models that manage their own state (e.g. Mamba): generate()'s default
        extra = {}
    if stop_on_answer_line:
        extra["stopping_criteria"] = StoppingCriteriaList(
            [StopAfterAnswerLine(model, tok, input_ids.shape[1])]
        )
    out = model.generate(
        input_ids=input_ids, attention_mask=mask, pad_token_id=tok.pad_token_id,
        eos_token_id=sorted(eos_ids(model, tok)), return_dict_in_generate=True,
        output_logits=logprobs, disable_compile=True, **gen_kwargs, **extra,
    )
    new = out.sequences[:, input_ids.shape[1]:].tolist()
    lps = None
    if logprobs:
        lps = model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        lps = lps.float().tolist()
    return cut_at_eos(new, lps, eos_ids(model, tok))


def decode_text(tok: Any, ids: list[int]) -> str:
    """The text of generated token ids, special tokens (eos, padding) dropped."""
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
        start = len(decode_text(tok, ids[:j]))
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
    batches = length_batches([len(p) for p in prompts], [k] * len(prompts), batch_size)
    gen_kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                      max_new_tokens=max_new_tokens)
    by_question: dict[int, list[Sample]] = {}
    model = decode_model(model, dtype)
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


def _to_sample(tok: Any, question_id: str, index: int, d: Decoded, family: str) -> Sample:
    text = decode_text(tok, d.ids)
    parsed = parse_answer(text, family)
    lp = None
    if parsed.answer is not None and d.logprobs is not None:
        lp = answer_logprob(tok, d.ids, d.logprobs, text)
        lp = lp if lp is None or math.isfinite(lp) else None
    return Sample(question_id, index, text, parsed.answer, parsed.status, lp, d.n_new_tokens)


def greedy_texts(
    model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int,
    progress: bool, desc: str, stop_on_answer_line: bool = False,
) -> list[str]:
    ids = [tok(p)["input_ids"] for p in prompts]
    batches = length_batches([len(x) for x in ids], [1] * len(ids), batch_size)
    texts: list[str] = [""] * len(ids)
    gen_kwargs = dict(do_sample=False, max_new_tokens=max_new_tokens)
    bar = tqdm(total=len(ids), desc=desc, unit="seq", disable=not progress)
    with torch.inference_mode():
        for batch in batches:
            decoded = _decode_rows(model, tok, [ids[i] for i in batch], gen_kwargs,
                                   logprobs=False, stop_on_answer_line=stop_on_answer_line)
            for i, d in zip(batch, decoded, strict=True):
                texts[i] = decode_text(tok, d.ids)
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
    return greedy_texts(model, tok, prompts, max_new_tokens, batch_size, progress, "greedy")
