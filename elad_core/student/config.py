"""Config sections of the ELAD student: the embedded tiny model and fine-tuning
(docs/design.md §2 step 6, §5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from elad_core.config_base import StrictModel


class EmbeddedStudentConfig(StrictModel):
    """The tiny Llama-architecture student created from a config (no pretrained weights)."""

    vocab_size: int = Field(768, ge=300, description=(
        "Vocabulary of the byte-level BPE tokenizer (digits split one per token)."))
    hidden_size: int = Field(128, ge=8)
    num_layers: int = Field(3, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(384, ge=8)
    max_position_embeddings: int = Field(768, ge=64)


class TrainConfig(StrictModel):
    mode: Literal["auto", "full", "lora"] = Field(
        "auto", description="Student fine-tuning (auto = full for the embedded student, LoRA "
                            "otherwise).")
    steps: int = Field(100, ge=1, description="Optimizer steps per round.")
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0, description=(
        "Learning rate of full fine-tuning (the from-scratch student)."))
    lora_lr: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(30, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1,
                                description="The cosine schedule decays to this × lr.")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    max_length: int = Field(512, ge=16, description=(  # GSM8K: ~2% longer
        "Most tokens of a training sequence, prompt + target."))
    # auto: emulated bf16 was ~10x slower on an AVX2-only CPU (elad_core/student/precision.py)
    bf16: Literal["auto"] | bool = Field("auto", description=(
        "bf16 autocast: auto = where the device computes bf16 natively (CUDA with bf16, a CPU "
        "with AVX512-BF16 / AMX / Arm BF16), fp32 elsewhere; true / false force it."))
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    continue_from_last: bool | None = Field(None, description=(
        "Train each round from the last round's weights; None = auto: LoRA retrains the adapter "
        "from the base each round (docs/design.md §2 default), full fine-tuning of the "
        "from-scratch student continues from the last round's weights."))
