"""Batched decoding with the student: K sampled explanations, EGSS answer probes, greedy answers.

Source: docs/design.md §2 step 1 (K explanations at temperature τ), §2.2 (EGSS probes: question +
first i steps + `#### `, greedy, ≤ 8 tokens; `self_confidence` needs answer-token log-probs).
Prompts are sorted by token length and left padded so one `generate()` call serves many prompts
with little padding; results come back in input order. EGSS probes of one explanation share
their prefix, so each prefix is encoded once and only the cue + answer is decoded per probe.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StaticCache, StoppingCriteria, StoppingCriteriaList

from elad_core.elad.parsing import ANSWER_MARK, parse_answer
from elad_core.elad.prompts import student_prompt
from elad_core.elad.records import Sample


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


def _decode_rows(
    model: Any, tok: Any, rows: list[list[int]], gen_kwargs: dict[str, Any], logprobs: bool,
    stop_on_answer_line: bool = False,
) -> list[_Decoded]:
    """One generate() call over left-padded `rows`; outputs cut at the first eos.

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
    if getattr(model, "_supports_default_dynamic_cache", lambda: True)():
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
    eos = _eos_ids(model, tok)
    decoded = []
    for r, ids in enumerate(new):
        cut = next((j for j, t in enumerate(ids) if t in eos), None)
        n_new = len(ids) if cut is None else cut + 1
        ids = ids if cut is None else ids[:cut]
        decoded.append(_Decoded(ids, n_new, None if lps is None else lps[r][: len(ids)]))
    return decoded


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
    family: str = "number", progress: bool = False,
) -> list[Sample]:
    """K sampled explanations per question (docs/design.md §2 step 1), ordered by question then index.

    Returns len(questions) * k Samples. Each generate() call holds up to `batch_size` sequences
    (at least one question's K). Pure ancestral sampling at `temperature` (top_k 0, top_p 1).
    answer_logprob: mean natural-log probability, under the untempered model, of the tokens
    of the answer after the last `####`; None when no answer was parsed. Each call is seeded
    from `seed` and the ids of the questions in it: same inputs + seed → identical output.
    """
    prompts = [tok(student_prompt(q))["input_ids"] for q in questions]
    if len(prompts) != len(question_ids):
        raise ValueError(f"{len(question_ids)} question ids for {len(questions)} questions")
    batches = _length_batches([len(p) for p in prompts], [k] * len(prompts), batch_size)
    gen_kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                      max_new_tokens=max_new_tokens)
    by_question: dict[int, list[Sample]] = {}
    bar = tqdm(total=len(prompts) * k, desc="sampling", unit="seq", disable=not progress)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        for batch in batches:
            torch.manual_seed(_batch_seed(seed, [question_ids[i] for i in batch]))
            rows = [prompts[i] for i in batch for _ in range(k)]
            decoded = _decode_rows(model, tok, rows, gen_kwargs, logprobs=True)
            for n, i in enumerate(batch):
                by_question[i] = [
                    _to_sample(tok, question_ids[i], s, d, family)
                    for s, d in enumerate(decoded[n * k:(n + 1) * k])
                ]
            bar.update(len(rows))
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
    progress: bool = False,
) -> list[str]:
    """Greedy explanation (text after the student prompt, cut at eos) for each question."""
    prompts = [student_prompt(q) for q in questions]
    return _greedy_texts(model, tok, prompts, max_new_tokens, batch_size, progress, "greedy")
