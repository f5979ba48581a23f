"""Scale-out (issue #8): sampling / probe shards on a Dask cluster give the single-process results.

The end-to-end test runs the same tiny two-round job (oracle teacher: a test double for a
real LLM) twice — sequential runner, then a local Dask cluster of 2 worker processes on
127.0.0.1 with one thread each — and compares every output that depends on the shards.
"""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config

from elad_core.elad.config import RunConfig, RunnerConfig, load_config
from elad_core.errors import ConfigError
from elad_core.files import read_parquet


def test_runner_defaults_to_sequential():
    assert RunConfig().runner.kind == "sequential"


def test_address_without_dask_is_refused_naming_the_option(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("runner: {address: 'tcp://127.0.0.1:8786'}\n")
    with pytest.raises(ConfigError, match=r"job.yaml: option 'runner': .*needs kind 'dask'"):
        load_config(path)


def test_unknown_runner_kind_is_refused():
    with pytest.raises(ConfigError, match=r"option 'runner.kind'"):
        load_config(overrides={"runner.kind": "ray"})


def test_sequential_runner_is_one_thread():
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.runners import task_runner

    with task_runner(RunnerConfig()) as runner:
        # one worker thread: shards run one after another, in submission order
        assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 1


def test_dask_runner_on_a_running_scheduler_keeps_its_address():
    from prefect_dask import DaskTaskRunner

    from flows.runners import task_runner

    cfg = RunnerConfig(kind="dask", address="tcp://127.0.0.1:8786")
    with task_runner(cfg) as runner:  # no cluster is started for an external scheduler
        assert isinstance(runner, DaskTaskRunner) and runner.address == cfg.address


def _outputs(cfg: RunConfig, summary) -> dict:
    """Everything a run's shards decide, with paths and wall times left out."""
    run = cfg.run_dir
    out = {"rounds": [{k: r[k] for k in ("selected", "teacher_tokens", "accuracy", "parse_rate",
                                         "eval_loss", "train_loss", "train_loss_first",
                                         "sampled_new_tokens", "annotation_statuses")}
                      for r in summary.rounds]}
    for rd in sorted(run.glob("round_*")):
        for name in ("samples", "probes", "scores", "selected", "annotations"):
            if (rd / f"{name}.parquet").exists():
                out[f"{rd.name}/{name}"] = read_parquet(rd / f"{name}.parquet")
        log = json.loads((rd / "model" / "train_log.json").read_text())
        out[f"{rd.name}/losses"] = log["losses"]
        out[f"{rd.name}/predictions"] = json.loads((rd / "eval.json").read_text())["predictions"]
    return out


@pytest.fixture
def one_torch_thread():
    """This process computes with one torch thread, like each Dask worker below.

    Bit-identical floats need the same intra-op thread count: float reductions are split
    by thread, so log-probs can differ in the last bits (measured: one sample's answer
    log-prob -5.75719431 with 1 thread, -5.75719435 with 2; tokens identical).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_round_on_two_dask_workers_equals_single_process(prefect_harness, one_torch_thread, tmp_path):
    import tasks.elad.student
    from flows.elad.loop import active_distillation
    from flows.runners import local_dask_cluster

    # 4 shards of 4 questions in round 1 (16 questions left after the 8 seeded)
    student = {**tiny_config(tmp_path)["student"], "shard_questions": 4}
    seq = RunConfig.model_validate(tiny_config(tmp_path / "seq", student=student))
    expected = _outputs(seq, active_distillation(seq))

    with local_dask_cluster(n_workers=2, torch_threads=1) as address:
        dask_cfg = RunConfig.model_validate(tiny_config(
            tmp_path / "dask", student=student, runner={"kind": "dask", "address": address}))
        got = _outputs(dask_cfg, active_distillation(dask_cfg))
        from distributed import Client

        with Client(address, set_as_default=False) as client:
            threads = client.run(lambda: __import__("torch").get_num_threads())
            loads = client.run(lambda: tasks.elad.student._load.cache_info().misses)
            # Dask's default 64 KiB malloc trim threshold made sampling 2.2x slower: not set
            trim = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))

    assert len(expected["round_001/samples"]) == 2 * 16 and expected["round_001/probes"]
    assert set(got) == set(expected)
    for key in expected:  # selected ids, annotations, samples, probes, accuracy, losses
        assert got[key] == expected[key], key
    # both worker processes ran shards (each loaded the student), with one torch thread each
    assert len(loads) == 2 and all(n >= 1 for n in loads.values()), loads
    assert set(threads.values()) == {1}, threads
    assert set(trim.values()) == {None}, trim


def test_train_processes_option():
    cfg = RunnerConfig(train_processes=2)
    assert cfg.train_processes == 2 and RunnerConfig().train_processes == 1
    with pytest.raises(ConfigError, match=r"option 'runner.train_processes'"):
        load_config(overrides={"runner.train_processes": 0})


def test_launch_command_uses_accelerate_on_gpus_and_torchrun_on_cpu(tmp_path):
    from elad_core.student.training import launch_command

    spec = tmp_path / "spec.json"
    gpu = launch_command(4, "cuda", spec)
    assert gpu[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in gpu
    assert gpu[gpu.index("--num_processes") + 1] == "4"
    cpu = launch_command(2, "cpu", spec)
    assert cpu[1:3] == ["-m", "torch.distributed.run"] and cpu[cpu.index("--nproc_per_node") + 1] == "2"
    for cmd in (gpu, cpu):  # each process runs the same training module on the same spec
        assert cmd[-3:] == ["-m", "elad_core.student.training", str(spec)]


def test_training_spec_missing_a_field_names_it(tmp_path):
    from elad_core.student.training import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"base": "b", "init_weights": None, "examples": [], "train": {}}))
    with pytest.raises(ConfigError, match=r"spec.json: field 'mode' is missing"):
        main([str(spec)])


@pytest.mark.slow
def test_two_training_processes_match_one(tmp_path):
    """Data-parallel training (accelerate; here 2 CPU processes, torchrun + gloo) = one process.

    Two examples with equally many target tokens, batch 2: each process takes one, and the
    averaged gradient equals the one-process gradient of the batch mean, so losses and saved
    weights agree to float rounding. Without gradient sync the main process would have
    trained on its example alone and its weights would differ by far more.
    """
    from conftest import TINY_STUDENT, gsm8k_examples, student_pair
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from elad_core.student import build_embedded_student
    from elad_core.student.config import EmbeddedStudentConfig, TrainConfig
    from elad_core.student.training import launch_training

    base = build_embedded_student([p + t for p, t in map(student_pair, gsm8k_examples(50))],
                                  EmbeddedStudentConfig(**TINY_STUDENT),
                                  tmp_path / "base", seed=0)
    pairs = [("Q: What is 12 + 31?\nA:", "12 + 31 = 43\n#### 43"),
             ("Q: What is 25 + 14?\nA:", "25 + 14 = 39\n#### 39")]
    tok = AutoTokenizer.from_pretrained(base)
    assert len({len(tok(t, add_special_tokens=False)["input_ids"]) for _, t in pairs}) == 1
    cfg = TrainConfig(steps=5, batch_size=2, lr=1e-2, warmup_steps=1, max_length=64, bf16=False)
    one = launch_training(str(base), None, pairs, cfg, "full", tmp_path / "one", seed=0)
    two = launch_training(str(base), None, pairs, cfg, "full", tmp_path / "two", seed=0, processes=2)
    assert (one.num_processes, two.num_processes) == (1, 2)
    assert two.n_tokens == one.n_tokens
    assert two.losses == pytest.approx(one.losses, rel=1e-5)
    assert two.losses[-1] < two.losses[0] - 1.0  # it did learn
    w1 = load_file(tmp_path / "one" / "model.safetensors")
    w2 = load_file(tmp_path / "two" / "model.safetensors")
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5
    trained = max((w1[k] - load_file(base / "model.safetensors")[k]).abs().max().item() for k in w1)
    assert trained > 1e-3  # the tolerance above is far below what training changed
