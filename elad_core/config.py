"""Typed run configuration: one `RunConfig` is the flow parameter.

Groups DataConfig, StudentConfig, SelectionConfig, TeacherConfig, TrainConfig, EvalConfig,
RunnerConfig.
Unknown keys are rejected. The same config loads from YAML, the CLI and a deployment.
Defaults are the embedded demo of docs/design.md §2 (GSM8K subset, tiny student, oracle teacher).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from elad_core.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    dataset: str = "gsm8k"  # "gsm8k" (embedded copy), a .jsonl path, or a hub dataset id
    hub_config: str | None = "main"  # hub dataset config name (GSM8K's is "main")
    pool_split: str = "train"  # unlabelled pool (gold is used only by the oracle teacher)
    eval_split: str = "test"  # held-out evaluation split
    pool_size: int | None = Field(512, ge=1)  # seeded subset of the pool; None = all
    eval_size: int | None = Field(100, ge=1)  # seeded subset of the eval split; None = all
    # source format: gsm8k (JSONL question/answer), aqua, esnli, commonsenseqa (+ CoS-E),
    # strategyqa (evaluation only), anli, or jsonl / csv files read with `fields`
    format: Literal["gsm8k", "aqua", "esnli", "commonsenseqa", "strategyqa", "anli", "jsonl"] = "gsm8k"
    fields: dict[str, str] = {}  # jsonl format: {question, answer, rationale} -> column names
    # evaluate on another source (e.g. StrategyQA, evaluation only); None = same as the pool
    eval_dataset: str | None = None
    eval_format: Literal["gsm8k", "aqua", "esnli", "commonsenseqa", "strategyqa", "anli",
                         "jsonl"] | None = None
    # answer family; None = the format's own (gsm8k number, aqua / commonsenseqa option,
    # esnli / anli label, strategyqa yesno); jsonl needs it set
    family: Literal["number", "option", "label", "yesno"] | None = None

    @property
    def answer_family(self) -> str:
        from elad_core.loaders import FORMAT_FAMILY

        return self.family or FORMAT_FAMILY.get(self.format) or "number"


class EmbeddedStudentConfig(_Strict):
    """The tiny Llama-architecture student created from a config (no pretrained weights)."""

    vocab_size: int = Field(768, ge=300)  # byte-level BPE, digits split one per token
    hidden_size: int = Field(128, ge=8)
    num_layers: int = Field(3, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(384, ge=8)
    max_position_embeddings: int = Field(768, ge=64)


class StudentConfig(_Strict):
    model: str = "embedded"  # "embedded", a hub id or a local path of a causal LM
    embedded: EmbeddedStudentConfig = EmbeddedStudentConfig()
    k_samples: int = Field(4, ge=1)  # K explanations per question (docs/design.md §2.2)
    temperature: float = Field(0.7, gt=0)  # τ for sampling
    max_new_tokens: int = Field(160, ge=8)  # per explanation
    generate_batch_size: int = Field(64, ge=1)  # sequences per generate() call
    shard_questions: int = Field(128, ge=1)  # questions per cached sampling task
    probe_max_new_tokens: int = Field(8, ge=1)  # EGSS probe decode length
    probe_batch_size: int = Field(128, ge=1)
    max_probe_steps: int = Field(12, ge=1)  # probes use at most this many steps per sample
    device: str = "cpu"
    # Prefect global concurrency limit held while the student samples, probes, trains and
    # evaluates (one slot per round step; e.g. "elad-gpu" with 1 slot per GPU box). None: none.
    concurrency_limit: str | None = None


class SelectionConfig(_Strict):
    selector: str = "egss"  # see elad_core.selectors.SELECTORS
    seed_size: int = Field(128, ge=1)  # B0: random questions annotated with CoT in round 0
    per_round: int = Field(64, ge=1)  # B: questions selected per later round
    egss_lambda: float = Field(1.0, ge=0)  # EGSS = U_inter + λ·U_intra

    @field_validator("selector")
    @classmethod
    def _known_selector(cls, name: str) -> str:
        from elad_core.selectors import SELECTORS

        if name not in SELECTORS:
            raise ValueError(f"unknown selector {name!r}; choose one of "
                             f"{', '.join(map(repr, SELECTORS))}")
        return name


class OracleFaultConfig(_Strict):
    """Faults the oracle teacher injects, seeded (docs/design.md §2.4); all off by default."""

    latency_s: float = Field(0.0, ge=0)  # added to every request
    error_rate: float = Field(0.0, ge=0, le=1)  # share answered with HTTP 500
    rate_limit_rate: float = Field(0.0, ge=0, le=1)  # share answered 429 + Retry-After
    timeout_rate: float = Field(0.0, ge=0, le=1)  # share held hang_s (the client times out)
    drop_rate: float = Field(0.0, ge=0, le=1)  # share whose connection drops mid-body
    malformed_rate: float = Field(0.0, ge=0, le=1)  # share answered 200 + truncated JSON
    unparsable_rate: float = Field(0.0, ge=0, le=1)  # share answered 200 + a useless text
    bad_request_rate: float = Field(0.0, ge=0, le=1)  # share answered 400 (permanent)
    retry_after_s: float = Field(1.0, ge=0)
    hang_s: float = Field(30.0, ge=0)  # how long a timeout fault holds a request
    seed: int = 0

    @model_validator(mode="after")
    def _rates_sum(self) -> "OracleFaultConfig":
        total = (self.error_rate + self.rate_limit_rate + self.timeout_rate + self.drop_rate
                 + self.malformed_rate + self.unparsable_rate + self.bad_request_rate)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fault rates sum to {total:g}; at most 1 is possible")
        return self


class TeacherConfig(_Strict):
    model: str = "oracle"  # "oracle" (local test double) or any litellm model string
    api_base: str | None = None  # e.g. http://127.0.0.1:8000/v1; set automatically for oracle
    # the API key comes from an environment variable (its NAME here, never the key) or from
    # a Prefect Secret block (its name; resolved inside the teacher task), not both
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_key_secret: str | None = None
    seed_annotator: Literal["cot", "clear", "clear_single"] = "cot"
    annotator: Literal["cot", "clear", "clear_single"] = "clear"  # docs/design.md §2.3
    max_concurrency: int = Field(8, ge=1)  # concurrent requests inside one batch
    # worker processes a batch's requests are spread over, each with its own event loop
    # (litellm's ~3 ms CPU per call caps one loop near 300 calls/s); 1 = in the task's process
    processes: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=1)  # questions per cached teacher task
    timeout_s: float = Field(60.0, gt=0)
    max_tokens: int = Field(512, ge=16)
    temperature: float = Field(0.0, ge=0)
    retries: int = Field(4, ge=0)  # Prefect task retries for transient errors
    retry_delay_s: float = Field(1.0, ge=0)  # first backoff; doubles each retry, with jitter
    # client-side rate limits (Prefect global rate limits, created on first use); None: none
    rpm_limit: int | None = Field(None, ge=1)  # requests per minute
    tpm_limit: int | None = Field(None, ge=1)  # tokens per minute (prompt + max_tokens)
    completion_tokens_estimate: int = Field(256, ge=1)  # per call, for budget estimates
    # Prefect global concurrency limit held per teacher batch in flight, across all runs on a
    # server (e.g. "elad-teacher-api"). None: no limit (ephemeral local runs need no setup).
    concurrency_limit: str | None = None
    input_cost_per_1m_usd: float | None = None  # None: litellm's price map (0 if unknown)
    output_cost_per_1m_usd: float | None = None
    filter_wrong_teacher: bool = False  # drop annotations disagreeing with gold (if gold)
    max_clear_turns: int = Field(16, ge=1)
    oracle: OracleFaultConfig = OracleFaultConfig()  # oracle only: injected faults (tests)

    @model_validator(mode="after")
    def _one_key_source(self) -> "TeacherConfig":
        if self.api_key_env and self.api_key_secret:
            raise ValueError("set api_key_env or api_key_secret, not both")
        return self


class TrainConfig(_Strict):
    mode: Literal["auto", "full", "lora"] = "auto"  # auto: full for embedded, LoRA otherwise
    steps: int = Field(100, ge=1)  # per round; full FT continues from the last round
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0)  # full fine-tuning of the from-scratch student
    lora_lr: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(30, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # cosine decays to this × lr
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    max_length: int = Field(512, ge=16)  # tokens, prompt + target (GSM8K: ~2% longer)
    # bf16 autocast: "auto" = where the device computes bf16 natively (CUDA with bf16, a CPU
    # with AVX512-BF16 / AMX / Arm BF16), fp32 elsewhere (emulated bf16 was ~10x slower on an
    # AVX2-only CPU); true / false force it (elad_core/student/precision.py)
    bf16: Literal["auto"] | bool = "auto"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    # None = auto: LoRA retrains the adapter from the base each round (docs/design.md §2 default);
    # full fine-tuning of the from-scratch student continues from the last round's weights.
    continue_from_last: bool | None = None


class EvalConfig(_Strict):
    max_new_tokens: int = Field(160, ge=8)  # greedy explanation length cap
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(512, ge=16)  # held-out loss: prompt + gold target tokens


class RunnerConfig(_Strict):
    """Where a round's student sampling / EGSS probe shards run (README "Scaling").

    "sequential": one shard after another in the flow's process (the default). "dask": the
    shards are submitted concurrently to a Dask cluster through prefect-dask's
    DaskTaskRunner: a local cluster of `n_workers` processes started for the run, or the
    running scheduler at `address`. Each worker process runs one shard at a time (sampling
    seeds torch's process-wide RNG), so results are identical either way (same seeds).
    """

    kind: Literal["sequential", "dask"] = "sequential"
    # a running scheduler (`dask scheduler`), e.g. "tcp://10.0.0.5:8786", whose workers were
    # started with `--nthreads 1`; None = a local cluster on 127.0.0.1 started and stopped
    # with the run (kind "dask" only)
    address: str | None = None
    n_workers: int = Field(2, ge=1)  # local cluster: worker processes (one shard at a time each)
    torch_threads: int = Field(1, ge=1)  # local cluster: torch intra-op threads per worker
    # processes of the training step, data parallel through accelerate (one per GPU: `accelerate
    # launch --multi_gpu`; on CPU torchrun + gloo); 1 = in the flow's process (default)
    train_processes: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "RunnerConfig":
        if self.address and self.kind != "dask":
            raise ValueError(f"address {self.address!r} needs kind 'dask', got {self.kind!r}")
        return self


class RunConfig(_Strict):
    run_name: str = Field("gsm8k-demo", pattern=r"^[A-Za-z0-9_.-]+$")
    runs_dir: Path = Path("runs")
    seed: int = 0
    rounds: int = Field(3, ge=1)  # round 0 (seed) + rounds-1 active rounds
    # budgets: the run stops at a round boundary before an (estimated) round would exceed
    # one, and stops sending teacher batches inside a round once the next would
    max_teacher_tokens: int | None = Field(None, ge=1)  # whole run
    max_cost_usd: float | None = Field(None, gt=0)
    max_round_teacher_tokens: int | None = Field(None, ge=1)  # each round
    max_round_cost_usd: float | None = Field(None, gt=0)
    data: DataConfig = DataConfig()
    student: StudentConfig = StudentConfig()
    selection: SelectionConfig = SelectionConfig()
    teacher: TeacherConfig = TeacherConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    runner: RunnerConfig = RunnerConfig()  # where sampling / probe shards run (scale-out)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_name


def _format_validation(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(config)"
        parts.append(f"{source}: option '{loc}': {e['msg']}")
    return "; ".join(parts)


_M = TypeVar("_M", bound=BaseModel)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig from an optional YAML file plus dotted-key overrides.

    overrides: {"selection.selector": "random", ...}; None values are ignored.
    Raises ConfigError naming the file and the option on any invalid or unknown key.
    """
    return load_model(RunConfig, path, overrides)


def load_model(model: type[_M], path: Path | None = None,
               overrides: dict[str, Any] | None = None) -> _M:
    """A pydantic config `model` from an optional YAML file plus dotted-key overrides (None
    values ignored); ConfigError naming the file and the option on any invalid or unknown key."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of options")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None
