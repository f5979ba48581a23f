"""Loading a student (base model + optional LoRA adapter or full fine-tuned weights).

A student is any Hugging Face causal LM: a hub id, a local directory, or the embedded tiny
student built by `elad_core.student.embedded`. Fine-tuned weights are either a standard peft
adapter directory (`adapter_config.json`) or a full `save_pretrained` model directory.
Source: docs/design.md §2 steps 1 and 6.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from elad_core.errors import EladError

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


def default_train_mode(model_name: str) -> str:
    """`TrainConfig.mode = "auto"` resolved: "full" for the embedded student, else "lora"."""
    return "full" if model_name == "embedded" else "lora"


def is_adapter_dir(path: Path) -> bool:
    """True when `path` is a peft adapter directory (holds adapter_config.json)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def _check_exists(path: Path | str, what: str) -> None:
    if not Path(path).exists():
        raise EladError(f"{what} {str(path)!r} does not exist; build or train it first")


def load_tokenizer(source: str | Path) -> Any:
    """Tokenizer of a model dir or hub id, ready for batched generation.

    The pad token falls back to eos when the model has none; padding side is "left" (generation);
    training code switches it to "right" itself. Raises EladError when it cannot be loaded.
    """
    try:
        tok = AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as exc:
        raise EladError(
            f"cannot load a tokenizer from {str(source)!r} ({exc}); pass a local model "
            "directory or a hub id that is in the local cache (HF_HUB_OFFLINE)"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_causal_lm(source: str | Path, device: str = "cpu", dtype: Any = None,
                   attn_implementation: str | None = None) -> Any:
    """`AutoModelForCausalLM` from a model dir or hub id: fp32 on CPU, the checkpoint dtype else.

    dtype: a torch dtype (or "auto") instead of that default, e.g. bf16 weights for a model
    that only decodes (sampling.decode_dtype). attn_implementation: transformers' choice
    ("sdpa" for most models) when None, else e.g. "eager". Training keeps the defaults.
    Raises EladError when the model cannot be loaded.
    """
    if dtype is None:
        dtype = torch.float32 if device == "cpu" else "auto"
    extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, **extra)
    except (OSError, ValueError) as exc:
        raise EladError(
            f"cannot load a causal LM from {str(source)!r} ({exc}); pass a local model "
            "directory or a hub id that is in the local cache (HF_HUB_OFFLINE)"
        ) from None
    return model.to(device)


def _tokenizer_source(weights: Path | None, base: str) -> str | Path:
    if weights is not None and (Path(weights) / "tokenizer_config.json").is_file():
        return weights
    return base


def load_student(base: str, weights: Path | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """Load the student for inference: returns (model in eval mode, tokenizer).

    base: hub id or local model directory. weights: None (the base itself), a peft adapter
    directory (adapter_config.json; loaded onto base and merged for fast inference), or a full
    fine-tuned model directory (loaded instead of base). The tokenizer comes from `weights`
    when it holds one, else from base; pad falls back to eos, padding side "left".
    Raises EladError when a path does not exist or cannot be loaded.
    """
    if base == "embedded":
        raise EladError(
            "base 'embedded' is not a model: build it with build_embedded_student() and pass "
            "the directory it returns"
        )
    if base.startswith((".", "/", "~")) or Path(base).exists():
        _check_exists(base, "student base model")
    if weights is not None:
        _check_exists(weights, "student weights directory")
    tok = load_tokenizer(_tokenizer_source(weights, base))
    if weights is not None and is_adapter_dir(Path(weights)):
        from peft import PeftModel

        model = PeftModel.from_pretrained(load_causal_lm(base, device), str(weights))
        model = model.merge_and_unload()
    else:
        model = load_causal_lm(weights if weights is not None else base, device)
    model.eval()
    log.info("loaded student %s (weights %s) on %s", base, weights, device)
    return model, tok


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temp dir next to `out_dir`; on success it replaces `out_dir` in one rename.

    An existing `out_dir` is moved aside and deleted only after the new one is in place; on an
    exception the temp dir is removed and `out_dir` is left untouched.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
