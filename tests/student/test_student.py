"""Contract tests of the student stack with a tiny real model: no mocks of torch.

A 1-layer, hidden-32 Llama student is built offline on 50 GSM8K questions; a copy trained
for a few seconds on the two shortest solutions memorises them, which makes sampling,
probing and evaluation checkable with exact expectations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_STUDENT, gsm8k_examples, student_pair
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import parse_probe_answer
from elad_core.explanations.prompt import probe_prompt, student_prompt
from elad_core.explanations.records import Example
from elad_core.errors import EladError
from elad_core.student import (
    build_embedded_student,
    default_train_mode,
    load_student,
    probe_answers,
    sample_explanations,
    train_student,
)
from elad_core.student.config import EmbeddedStudentConfig, TrainConfig
from elad_core.student.evaluation import evaluate
from elad_core.student.sampling import answer_span

TINY = EmbeddedStudentConfig(**TINY_STUDENT)
_examples, _pair = gsm8k_examples, student_pair


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    return _examples()


@pytest.fixture(scope="module")
def student_dir(corpus, tmp_path_factory) -> Path:
    texts = [p + t for p, t in map(_pair, corpus)]
    return build_embedded_student(texts, TINY, tmp_path_factory.mktemp("s") / "embedded", seed=0)


@pytest.fixture(scope="module")
def memorised(corpus, student_dir, tmp_path_factory):
    """(full model dir, TrainResult, the 2 examples it was overfit on: the shortest ones)."""
    tok = AutoTokenizer.from_pretrained(student_dir)
    two = sorted(corpus, key=lambda e: len(tok("".join(_pair(e)))["input_ids"]))[:2]
    cfg = TrainConfig(steps=150, batch_size=2, lr=1e-2, warmup_steps=5, max_length=256)
    out = tmp_path_factory.mktemp("t") / "full"
    result = train_student(str(student_dir), None, [_pair(e) for e in two], cfg, "full", out, seed=0)
    return out, result, two


def test_tokenizer_splits_digits_and_round_trips(student_dir, corpus):
    tok = AutoTokenizer.from_pretrained(student_dir)
    ids = tok("1234", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["1", "2", "3", "4"]  # one token per digit
    text = "".join(_pair(corpus[0]))
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert tok("x")["input_ids"][0] == tok.bos_token_id  # <s> is prepended, as Llama does
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<s>", "</s>")


def test_build_is_deterministic_and_atomic(corpus, tmp_path):
    texts = [p + t for p, t in map(_pair, corpus[:20])]
    a = build_embedded_student(texts, TINY, tmp_path / "a", seed=3)
    b = build_embedded_student(texts, TINY, tmp_path / "b", seed=3)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    c = build_embedded_student(texts, TINY, tmp_path / "a", seed=4)  # replaces a
    wc = load_file(c / "model.safetensors")
    assert not torch.equal(wb["model.embed_tokens.weight"], wc["model.embed_tokens.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp dirs left


def test_model_reloads_like_a_hub_model(student_dir):
    model = AutoModelForCausalLM.from_pretrained(student_dir)
    tok = AutoTokenizer.from_pretrained(student_dir)
    assert model.config.vocab_size == len(tok) == TINY.vocab_size
    assert model.config.tie_word_embeddings and model.config.hidden_size == TINY.hidden_size
    student, stok = load_student(str(student_dir))
    assert not student.training and stok.padding_side == "left"
    assert default_train_mode("embedded") == "full" and default_train_mode("org/x") == "lora"


def test_load_student_missing_paths_raise_clear_errors(student_dir, tmp_path):
    with pytest.raises(EladError, match="does not exist"):
        load_student(str(tmp_path / "nope"))
    with pytest.raises(EladError, match="does not exist"):
        load_student(str(student_dir), tmp_path / "no-adapter")
    with pytest.raises(EladError, match="build_embedded_student"):
        load_student("embedded")


def test_full_training_lowers_loss_and_saves_a_model(memorised, student_dir):
    out, result, two = memorised
    assert len(result.losses) == 150 and result.n_examples == 2 and result.n_tokens > 0
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert first > last + 1.0, (first, last)
    assert json.loads((out / "train_log.json").read_text())["losses"] == result.losses
    model, _ = load_student(str(student_dir), out)
    base = AutoModelForCausalLM.from_pretrained(student_dir)
    assert not torch.equal(model.lm_head.weight, base.lm_head.weight)


def test_training_is_deterministic(memorised, student_dir, tmp_path):
    _, _, two = memorised
    cfg = TrainConfig(steps=4, batch_size=1, lr=1e-2, warmup_steps=1, max_length=256)
    runs = [train_student(str(student_dir), None, [_pair(e) for e in two], cfg, "full",
                          tmp_path / name, seed=5) for name in ("a", "b")]
    assert runs[0].losses == runs[1].losses and runs[0].n_tokens == runs[1].n_tokens
    wa, wb = (load_file(tmp_path / name / "model.safetensors") for name in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_answer_span_matches_parse_answer():
    text = "a = 2\n#### 1,000 \nextra"
    start, end = answer_span(text)
    assert text[start:end] == "1,000"  # the raw answer parse_answer reads, spaces trimmed
    assert answer_span("no answer here") is None and answer_span("#### \n") is None


def test_sample_explanations_shapes_logprobs_and_determinism(memorised, student_dir):
    out, _, two = memorised
    model, tok = load_student(str(student_dir), out)
    ids, questions = [e.id for e in two], [e.question for e in two]
    kw = dict(k=3, temperature=0.3, max_new_tokens=150, batch_size=4, seed=7)
    samples = sample_explanations(model, tok, ids, questions, **kw)
    assert [(s.question_id, s.sample_index) for s in samples] == [
        (q, i) for q in ids for i in range(3)]
    answered = [s for s in samples if s.answer is not None]
    assert answered, "the memorised student should write `#### answer` at τ=0.3"
    for s in samples:
        assert 0 < s.n_new_tokens <= 150
        if s.answer is None:
            assert s.answer_logprob is None
        else:
            assert math.isfinite(s.answer_logprob) and s.answer_logprob <= 0
    assert sample_explanations(model, tok, ids, questions, **kw) == samples


def test_probe_answers_one_per_prompt(memorised, student_dir):
    out, _, two = memorised
    model, tok = load_student(str(student_dir), out)
    prompts, full = [], []
    for ex in two:
        steps = ex.rationale.split("\n")
        prompts += [probe_prompt(ex.question, steps[:i]) for i in range(len(steps) + 1)]
        full.append(len(prompts) - 1)
    answers = probe_answers(model, tok, prompts, max_new_tokens=8, batch_size=4)
    assert len(answers) == len(prompts)
    # each answer is read from the continuation and normalised (not the raw text after `#### `)
    assert all(a is None or normalize_answer(a) == a for a in answers)
    # after every gold step the memorised student writes the gold answer
    assert [answers[i] for i in full] == [ex.answer for ex in two]
    # prefix sharing gives what decoding each prompt alone with generate() gives
    alone = []
    for p in prompts:
        x = tok(p, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                               max_new_tokens=8)
        alone.append(parse_probe_answer(tok.decode(y[0, x.shape[1]:], skip_special_tokens=True)))
    assert answers == alone


def test_evaluate_bookkeeping(memorised, student_dir):
    out, _, two = memorised
    model, tok = load_student(str(student_dir), out)
    wrong_gold = Example("bad", two[0].question, two[0].rationale, "-1")
    result = evaluate(model, tok, [*two, wrong_gold], max_new_tokens=150, batch_size=2)
    preds = result.predictions
    assert result.n == 3 and [p["question_id"] for p in preds] == [two[0].id, two[1].id, "bad"]
    assert preds[2]["prediction"] == preds[0]["prediction"]  # greedy: same question, same text
    assert result.accuracy == pytest.approx(sum(p["correct"] for p in preds) / 3)
    assert result.parse_rate == pytest.approx(sum(p["answer"] is not None for p in preds) / 3)
    assert not preds[2]["correct"]
    assert result.accuracy == pytest.approx(2 / 3)  # both memorised answers exact, -1 wrong


def test_lora_trains_only_the_adapter(memorised, student_dir, tmp_path):
    _, _, two = memorised
    cfg = TrainConfig(steps=8, batch_size=2, lora_lr=1e-2, warmup_steps=2, max_length=256, lora_r=4)
    adapter = tmp_path / "adapter"
    pairs = [_pair(e) for e in two]
    result = train_student(str(student_dir), None, pairs, cfg, "lora", adapter, seed=0)
    assert len(result.losses) == 8
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4

    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it moved
    assert not any("lora" not in k for k in weights)  # only adapter weights are saved

    tuned, tok = load_student(str(student_dir), adapter)  # adapter merged into the base
    plain, _ = load_student(str(student_dir))
    base_sd, tuned_sd = plain.state_dict(), tuned.state_dict()
    assert tuned_sd.keys() == base_sd.keys()
    for name, value in base_sd.items():
        linear = name.endswith("proj.weight")  # the layers "all-linear" LoRA targets
        assert torch.equal(tuned_sd[name], value) != linear, name  # only those moved
    ids = tok([student_prompt(two[0].question)], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        assert not torch.allclose(tuned(ids).logits, plain(ids).logits)

    more = train_student(str(student_dir), adapter, [_pair(e) for e in two], cfg, "lora",
                         tmp_path / "continued", seed=0)
    assert more.losses[0] < result.losses[0]  # continued from the trained adapter
