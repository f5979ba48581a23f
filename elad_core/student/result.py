"""What a student training run reports, for both methods (ELAD's causal LM in
elad_core/student/training.py, EvoKD's encoder in elad_core/evokd/student.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainResult:
    """losses: the training loss (nats: target-token or label cross-entropy) per optimizer
    step, several processes: their mean; n_examples: training pairs used; wall_s: seconds;
    precision: "bf16" (autocast) or "fp32" (elad_core/student/precision.py); mode: "full" |
    "lora" ("" where the caller did not say); n_tokens: target tokens seen over all steps
    and processes (ELAD; 0 otherwise); num_processes: data-parallel processes (accelerate)."""

    losses: list[float]
    n_examples: int
    wall_s: float
    precision: str = "fp32"
    mode: str = ""
    n_tokens: int = 0
    num_processes: int = 1
