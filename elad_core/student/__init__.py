"""The student: build the embedded tiny model, load any HF causal LM (+ adapter), sample
explanations, probe answers for EGSS, and fine-tune (full or LoRA).

The only package (with elad_core.student.evaluation) that imports torch, transformers, peft and
tokenizers. Source: docs/design.md §2 steps 1, 2 (probes), 6 and §5.
"""

from __future__ import annotations

from elad_core.student.embedded import build_embedded_student
from elad_core.student.model import default_train_mode, load_student
from elad_core.student.probes import probe_answers
from elad_core.student.result import TrainResult
from elad_core.student.sampling import greedy_explanations, sample_explanations
from elad_core.student.training import train_student

__all__ = [
    "TrainResult",
    "build_embedded_student",
    "default_train_mode",
    "greedy_explanations",
    "load_student",
    "probe_answers",
    "sample_explanations",
    "train_student",
]
