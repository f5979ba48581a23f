"""One small run end to end in-process: files, artifacts, caching, retries (docs/design.md §2, §3)."""

from __future__ import annotations

import json

import pytest
from conftest import read_artifacts, tiny_config

from elad_core.elad.config import RunConfig
from elad_core.files import read_parquet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(prefect_harness, tmp_path_factory):
    from flows.elad.loop import active_distillation

    tmp = tmp_path_factory.mktemp("e2e")
    # 10% of oracle requests fail with HTTP 500 (seeded): the teacher batch task must retry
    teacher = {**tiny_config(tmp)["teacher"], "retries": 6,
               "oracle": {"error_rate": 0.1, "seed": 1}}
    cfg = RunConfig.model_validate(tiny_config(tmp, teacher=teacher))
    first = active_distillation(cfg)
    return cfg, first


def test_round_folders_hold_every_output(finished_run):
    cfg, summary = finished_run
    run = cfg.run_dir
    assert [r["round"] for r in summary.rounds] == [0, 1]
    r0, r1 = run / "round_000", run / "round_001"
    for name in ("selected.parquet", "annotations.parquet", "eval.json", "manifest.json", "model"):
        assert (r0 / name).exists(), name
    for name in ("samples.parquet", "probes.parquet", "scores.parquet", "selected.parquet",
                 "annotations.parquet", "model", "eval.json", "manifest.json"):
        assert (r1 / name).exists(), name
    # round 1 samples K=2 explanations for each of the 24 - 8 questions not yet annotated
    assert len(read_parquet(r1 / "samples.parquet")) == 2 * 16
    # the selected questions are the teacher's: every annotation belongs to one of them
    selected = {r["question_id"] for r in read_parquet(r1 / "selected.parquet")}
    annotated = {r["question_id"] for r in read_parquet(r1 / "annotations.parquet")}
    assert len(selected) == 4 and annotated == selected
    # round 0's questions are never selected again
    seeded = {r["question_id"] for r in read_parquet(r0 / "selected.parquet")}
    assert not seeded & selected
    manifest = json.loads((r1 / "manifest.json").read_text())
    assert manifest["annotator"] == "clear" and manifest["selector"] == "egss"
    assert set(manifest["step_wall_s"]) == {"sample", "probe", "select", "annotate", "train", "evaluate"}


def test_summary_fields(finished_run):
    cfg, summary = finished_run
    on_disk = json.loads((cfg.run_dir / "summary.json").read_text())
    assert on_disk["teacher_requests_sent"] == summary.invocation.teacher_requests_sent > 0
    for r in on_disk["rounds"]:
        assert {"selected", "teacher_tokens", "accuracy", "train_loss"} <= set(r)
        assert r["teacher_tokens"] > 0
        # the accuracy is the share of eval.json's predictions whose answer equals the gold
        preds = json.loads((cfg.run_dir / f"round_{r['round']:03d}" / "eval.json").read_text())[
            "predictions"]
        assert len(preds) == cfg.data.eval_size
        correct = sum(p["answer"] is not None and p["answer"] == p["gold"] for p in preds)
        assert r["accuracy"] == correct / len(preds)
        # the pool has gold answers: every ok annotation says whether the teacher agrees;
        # filter_wrong_teacher is off, so training left none out
        rows = read_parquet(cfg.run_dir / f"round_{r['round']:03d}" / "annotations.parquet")
        assert all((a["teacher_agrees"] is not None) == (a["status"] == "ok") for a in rows)
        assert r["teacher_wrong"] == sum(a["teacher_agrees"] is False for a in rows)
        assert r["teacher_wrong_dropped"] == 0
    # round 1 continues training the round-0 student on a larger set: loss keeps falling,
    # on the training set and on the held-out gold solutions
    rounds = on_disk["rounds"]
    assert rounds[1]["train_loss"] < rounds[0]["train_loss_first"]
    assert 0 < rounds[1]["eval_loss"] < rounds[0]["eval_loss"]


def test_failed_teacher_requests_were_retried(finished_run):
    cfg, summary = finished_run
    log = [json.loads(line) for line in (cfg.run_dir / "oracle_requests.jsonl").read_text().splitlines()]
    failed = [r for r in log if r["status"] == 500]
    assert failed, "the seeded fault injection should have failed some requests"
    # ... yet every selected question ended annotated
    for r in summary.rounds:
        assert r["annotation_statuses"] == {"ok": r["selected"]}
    # a retry re-sends only what failed: for one-call CoT annotations (round 0) every
    # completion served is one that an annotation used (none paid twice)
    served = sum(r["status"] == 200 and r["mode"] == "cot" for r in log)
    used = sum(a["n_requests"] for a in read_parquet(cfg.run_dir / "round_000" / "annotations.parquet"))
    assert served == used == 8


def test_prefect_artifacts(finished_run):
    selected = read_artifacts("t-round-001-selected")
    assert selected and len(json.loads(selected[0].data)) == 4
    assert read_artifacts("t-round-001-metrics")
    report = read_artifacts("t-round-001-selection")  # the selection report (issue #16)
    assert report and "| selected | 4 |" in report[0].data
    curve = read_artifacts("t-accuracy-curve")
    assert len(json.loads(curve[0].data)) == 2


def test_rerun_is_cached_and_sends_no_request(finished_run):
    from flows.elad.loop import active_distillation

    cfg, first = finished_run
    again = active_distillation(cfg)
    assert again.invocation.teacher_requests_sent == 0
    for a, b in zip(first.rounds, again.rounds, strict=True):
        assert (a["teacher_tokens"], a["accuracy"], a["train_loss"]) == \
               (b["teacher_tokens"], b["accuracy"], b["train_loss"])
        assert b["teacher_batches_cached"] == b["teacher_batches"]


def test_pretrained_student_is_fine_tuned_with_lora(finished_run, tmp_path):
    """A local-path student (here: the first run's saved base) defaults to LoRA (peft)."""
    from flows.elad.loop import active_distillation

    cfg, _ = finished_run
    base = cfg.run_dir / "student_base"
    lora_cfg = RunConfig.model_validate(tiny_config(tmp_path, run_name="lora", student={
        **tiny_config(tmp_path)["student"], "model": str(base)}))
    summary = active_distillation(lora_cfg)
    assert [r["train_mode"] for r in summary.rounds] == ["lora", "lora"]
    adapter = lora_cfg.run_dir / "round_001" / "adapter"
    assert (adapter / "adapter_config.json").exists()  # standard peft adapter folder
    assert not (lora_cfg.run_dir / "student_base").exists()  # nothing built: base is given


def test_curve_artifact_rounds_floats_for_the_ui(finished_run):
    cfg, summary = finished_run
    rows = json.loads(read_artifacts("t-accuracy-curve")[0].data)
    for shown, full in zip(rows, summary.rounds, strict=True):
        assert shown["train_loss"] == round(full["train_loss"], 4)
        assert len(repr(shown["train_loss"]).split(".")[-1]) <= 4


def test_curve_picture_is_in_the_run_folder_and_the_ui(finished_run):
    """Issue #16 item 2d: the accuracy-against-teacher-tokens curve as a PNG in the run
    folder and as an image artifact (the same PNG as a data URI)."""
    import base64

    cfg, _ = finished_run
    png = cfg.run_dir / "accuracy-curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = read_artifacts("t-accuracy-curve-plot")
    assert image and image[0].type == "image"
    prefix = "data:image/png;base64,"
    assert image[0].data.startswith(prefix)
    assert base64.b64decode(image[0].data[len(prefix):]) == png.read_bytes()
