"""A tiny run per new selector, with a random control slice (docs/design.md §2.2.1-§2.2.5)."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config

from elad_core.elad.config import RunConfig
from elad_core.files import read_parquet

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("selector, extra", [
    ("typical", {}), ("hybrid", {}), ("auto", {}), ("auto", {"auto_switch": 0.0}),
    ("egss_cost", {}),
])
def test_round_with_selector_and_control_slice(prefect_harness, tmp_path, selector, extra):
    from flows.elad.loop import active_distillation

    cfg = tiny_config(tmp_path, run_name=f"sel-{selector}")  # own artifact keys
    cfg["selection"] = {**cfg["selection"], "selector": selector, "control_fraction": 0.25,
                        **extra}
    config = RunConfig.model_validate(cfg)
    summary = active_distillation(config)
    assert [r["round"] for r in summary.rounds] == [0, 1]
    r1 = config.run_dir / "round_001"
    rows = read_parquet(r1 / "selected.parquet")
    seeded = {r["question_id"] for r in read_parquet(config.run_dir / "round_000" / "selected.parquet")}
    # B = 4: round(0.25 · 4) = 1 control row, marked; none annotated before; all distinct
    ids = [r["question_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 4 and not seeded & set(ids)
    assert sum(r["control"] for r in rows) == 1
    assert {r["picked_by"] for r in rows if r["control"]} == {"control"}
    active = {r["picked_by"] for r in rows if not r["control"]}
    manifest = json.loads((r1 / "manifest.json").read_text())
    assert manifest["selector"] == selector
    # the selection report: the control question apart from the 3 selected ones
    report = manifest["selection_report"]
    assert report["control"]["questions"] == 1 and report["selected"]["questions"] == 3
    r0 = summary.rounds[0]
    assert manifest["accuracy_gain_per_1k_tokens"] == round(
        (manifest["accuracy"] - r0["accuracy"]) / (manifest["teacher_tokens"] / 1000), 6)
    assert r0["accuracy_gain_per_1k_tokens"] is None and "control" not in r0["selection_report"]
    if selector == "auto":
        reason = {r["auto_choice"] for r in rows}
        assert len(reason) == 1 and None not in reason
        # auto_switch 0: any agreement is enough for uncertainty; else the tiny student's
        # scattered answers keep it on typicality
        assert active == ({"egss"} if extra else {"typical"})
    else:
        assert active == {selector} and {r["auto_choice"] for r in rows} == {None}
    needs_embeddings = active & {"typical", "hybrid"}
    assert (r1 / "embeddings.parquet").exists() == bool(needs_embeddings)
    assert (r1 / "probes.parquet").exists() == bool(active & {"hybrid", "egss", "egss_cost"})
    scores = read_parquet(r1 / "scores.parquet")
    assert ("predicted_tokens" in scores[0]) == (selector == "egss_cost")
