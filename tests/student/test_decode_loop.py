"""The fast decode path of student sampling (issue #21 item 4) and `student.sample_dtype`.

`decode_loop.decode_loop` replaces generate() for plain decoders: shared prefill for the K copies,
slab KV cache, finished rows dropped, inverse-CDF sampling, shared-prefix attention. These
tests pin that each part decodes what generate() / plain attention decode (greedy, float32),
that sampling stays seeded-deterministic, and how the decode dtype is chosen. The model is a
small random Llama with grouped-query attention (4 query heads on 2 key/value heads) on the
embedded student's tokenizer; many eos ids make rows finish at different steps.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import TINY_STUDENT, gsm8k_examples, student_pair
from transformers import LlamaConfig, LlamaForCausalLM

from elad_core.elad.config import StudentConfig
from elad_core.explanations.prompt import student_prompt
from elad_core.errors import ConfigError
from elad_core.student import build_embedded_student, sample_explanations
from elad_core.student import decode_common, decode_loop, precision, sampling
from elad_core.student.config import EmbeddedStudentConfig
from elad_core.student.model import load_tokenizer
from elad_core.student.probes import probe_answers


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    texts = [p + t for p, t in map(student_pair, gsm8k_examples())]
    path = build_embedded_student(texts, EmbeddedStudentConfig(**TINY_STUDENT),
                                  tmp_path_factory.mktemp("s") / "embedded", seed=0)
    return load_tokenizer(path)


def gqa_model(tok, eos_ids: int = 30) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, initializer_range=0.3, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    # a row stops at any of these: rows finish at different steps (compaction is exercised)
    model.generation_config.eos_token_id = sorted({tok.eos_token_id, *range(10, 10 + eos_ids)})
    return model


QUESTIONS = [e.question for e in gsm8k_examples(6)]


def prompts(tok, n=6):
    return [tok(student_prompt(q))["input_ids"] for q in QUESTIONS[:n]]


@pytest.fixture
def options():
    """Set decode_common.OPTIONS fields for one test; restored afterwards."""
    def use(**kw):
        decode_common.OPTIONS = dataclasses.replace(decode_common.DecodeOptions(), **kw)
    yield use
    decode_common.OPTIONS = decode_common.DecodeOptions()


def greedy(model, tok, rows, copies=1, max_new=24):
    with torch.inference_mode():
        return sampling._decode_rows(model, tok, rows, dict(do_sample=False, max_new_tokens=max_new),
                                     logprobs=True, copies=copies)


def assert_same(a, b, tol=1e-4):
    assert [d.ids for d in a] == [d.ids for d in b]
    assert [d.n_new_tokens for d in a] == [d.n_new_tokens for d in b]
    for x, y in zip(a, b, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=tol)


def test_loop_decodes_what_generate_decodes(tok, options):
    model = gqa_model(tok)
    rows = prompts(tok)  # different lengths: left padding
    loop = greedy(model, tok, rows, copies=2)
    options(engine="generate")
    gen = greedy(model, tok, rows, copies=2)
    assert_same(loop, gen)
    assert len({d.n_new_tokens for d in loop}) > 1, "rows should finish at different steps"


def test_shared_prefix_attention_and_dropping_rows_change_nothing(tok, options):
    model = gqa_model(tok)
    rows = prompts(tok)
    fast = greedy(model, tok, rows, copies=3)
    for off in ({"shared_attention": False}, {"compact": False}, {"share_prefill": False}):
        options(**off)
        assert_same(fast, greedy(model, tok, rows, copies=3))
    assert model.config._attn_implementation == "sdpa"  # switched back after the call


def test_sampling_is_seeded_and_history_free(tok):
    model = gqa_model(tok)
    ids = [f"q{i}" for i in range(len(QUESTIONS))]
    kw = dict(k=3, temperature=0.7, max_new_tokens=20, batch_size=6, seed=3)
    first = sample_explanations(model, tok, ids, QUESTIONS, **kw)
    sample_explanations(model, tok, ids[:2], QUESTIONS[:2], k=2, temperature=1.0,
                        max_new_tokens=40, batch_size=64, seed=9)  # other calls in between
    assert sample_explanations(model, tok, ids, QUESTIONS, **kw) == first
    assert len({s.text for s in first}) > len(QUESTIONS)  # copies of a question differ
    assert all(0 < s.n_new_tokens <= 20 for s in first)


def test_inverse_cdf_sampling_matches_the_distribution():
    torch.manual_seed(0)
    logits = torch.randn(1, 700) * 2
    logits[0, 300:450] = -float("inf")  # probability 0: never drawn
    n = 100_000
    drawn = torch.cat([decode_loop._sample_inverse_cdf(logits.expand(1000, -1).contiguous(), 0.8)
                       for _ in range(n // 1000)])
    freq = torch.bincount(drawn, minlength=700).double() / n
    p = torch.softmax(logits[0].double() / 0.8, -1)
    assert freq[300:450].sum() == 0
    assert 0.5 * (freq - p).abs().sum() < 0.02  # total variation (sampling noise ~0.005)


def test_decode_dtype(tok, monkeypatch):
    model = gqa_model(tok)
    assert sampling.decode_dtype(model, "fp32") == torch.float32
    assert sampling.decode_dtype(model, "bf16") == torch.bfloat16
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert sampling.decode_dtype(model, "auto") == torch.float32  # never emulated bf16
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert sampling.decode_dtype(model, "auto") == torch.bfloat16
    assert sampling.decode_dtype(model.to(torch.float16), "auto") == torch.float16  # kept
    with pytest.raises(ValueError, match="sample dtype"):
        sampling.decode_dtype(model, "fp8")


def test_decode_copy_leaves_the_model_alone(tok):
    model = gqa_model(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = sampling.decode_model(model, "bf16")
    assert twin is not model and twin.dtype == torch.bfloat16 and model.dtype == torch.float32
    assert twin.lm_head.weight is twin.model.embed_tokens.weight  # still tied
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sampling.decode_model(model, "fp32") is model
    ids = [f"q{i}" for i in range(3)]
    kw = dict(k=2, temperature=0.7, max_new_tokens=12, batch_size=4, seed=0, dtype="bf16")
    assert sample_explanations(model, tok, ids, QUESTIONS[:3], **kw) == sample_explanations(
        model, tok, ids, QUESTIONS[:3], **kw)


def test_models_with_logits_processors_use_generate(tok):
    model = gqa_model(tok)
    assert decode_loop.loop_supported(model)
    model.generation_config.repetition_penalty = 1.3
    assert not decode_loop.loop_supported(model)
    samples = sample_explanations(model, tok, ["a", "b"], QUESTIONS[:2], k=2, temperature=0.7,
                                  max_new_tokens=10, batch_size=4, seed=0)
    assert len(samples) == 4


def test_probes_on_the_fast_path(tok):
    model = gqa_model(tok, eos_ids=0)
    ps = [student_prompt(QUESTIONS[0]) + s + "#### " for s in ("", "a = 1\n", "a = 1\nb = 2\n")]
    fp32 = probe_answers(model, tok, ps, max_new_tokens=6, batch_size=4, dtype="fp32")
    assert len(fp32) == 3
    assert probe_answers(model, tok, ps, 6, 4, dtype="fp32") == fp32


def test_student_config_sample_dtype():
    assert StudentConfig().sample_dtype == "auto"
    assert StudentConfig(sample_dtype="fp32").sample_dtype == "fp32"
    with pytest.raises((ValueError, ConfigError)):
        StudentConfig(sample_dtype="fp16")
