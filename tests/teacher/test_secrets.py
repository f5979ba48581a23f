"""Secrets (issue #4): a planted API key, given by environment variable or by Prefect Secret
block, reaches the teacher (the oracle answers only with it) and is found nowhere else: not
under the run folder (parquet, journals, manifests, Prefect results), not in Prefect's
artifacts, flow- or task-run records or logs, not in what the process printed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import tiny_config

from elad_core.elad.config import RunConfig
from elad_core.elad.gsm8k import load_examples
from elad_core.elad.oracle_judge import OracleJudge
from elad_core.teacher.oracle.server import OracleServer, read_request_log

pytestmark = pytest.mark.slow


async def _prefect_records() -> str:
    """Every artifact, flow run, task run and log the Prefect API holds, as one text."""
    from prefect.client.orchestration import get_client

    parts = []
    async with get_client() as client:
        for read in (client.read_artifacts, client.read_flow_runs, client.read_task_runs,
                     client.read_logs):
            offset = 0
            while batch := await read(limit=200, offset=offset):
                parts += [b.model_dump_json() for b in batch]
                offset += len(batch)
    return "\n".join(parts)


@pytest.mark.parametrize("source", ["env", "secret_block"])
def test_planted_key_is_used_and_found_nowhere(prefect_harness, tmp_path, monkeypatch, capfd,
                                               caplog, source):
    from prefect.blocks.system import Secret

    from flows.elad.loop import active_distillation

    key = f"sk-elad-planted-{uuid.uuid4().hex}"
    teacher = {**tiny_config(tmp_path)["teacher"]}
    if source == "env":
        monkeypatch.setenv("ELAD_TEST_TEACHER_KEY", key)
        teacher["api_key_env"] = "ELAD_TEST_TEACHER_KEY"
    else:
        block = f"elad-test-key-{uuid.uuid4().hex[:8]}"
        Secret(value=key).save(block, overwrite=True)
        teacher["api_key_secret"] = block
    log = tmp_path / "oracle.jsonl"  # outside the run folder: the server is the test's
    with OracleServer(OracleJudge(load_examples("gsm8k", "train")), request_log=log,
                      api_key=key) as server:
        teacher["api_base"] = server.api_base
        cfg = RunConfig.model_validate(tiny_config(tmp_path, run_name=f"secrets-{source}",
                                                   rounds=1, teacher=teacher))
        summary = active_distillation(cfg)
    # the key reached the teacher: it answers nothing without it (401)
    assert summary.rounds[0]["annotation_statuses"] == {"ok": 8}
    assert {r["status"] for r in read_request_log(log)} == {200}

    needle = key.encode()
    files = [p for p in cfg.run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(".prefect" in p.parts for p in files)
    assert [p for p in files if needle in p.read_bytes()] == []
    records = asyncio.run(_prefect_records())
    # the key's name is there (the flow-run parameters were read), its value is not
    assert teacher.get("api_key_env", teacher.get("api_key_secret")) in records
    assert key not in records
    out, err = capfd.readouterr()
    assert key not in out and key not in err and key not in caplog.text
