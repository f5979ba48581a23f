"""A short run of the flow on each of the paper's dataset formats, every selector and every
annotator used.

The oracle teacher answers round 0's CoT from each dataset's gold explanation and judges the
CLEAR / clear_single revisions of round 1 (label tasks: by the student's answer, docs/design.md §2.4).
Each runs on the small real-format copies in tests/fixtures/datasets (the pool splits hold
12 rows: round 0's seed of 8 plus round 1's 4), and again on the full reference copies where
../shared/data exists beside the checkout (extras).
"""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURE_DATA, SHARED_DATA, needs_shared, tiny_config

from elad_core.elad.config import RunConfig
from elad_core.files import read_parquet

pytestmark = pytest.mark.slow
SOURCES = [pytest.param(FIXTURE_DATA, id="fixtures"),
           pytest.param(SHARED_DATA, id="reference", marks=needs_shared)]

CASES = [  # (format, dataset folder or file, pool split, eval split, selector, annotator)
    ("aqua", "aqua", "dev", "test", "max_entropy", "clear"),
    ("esnli", "esnli", "dev", "test", "least_confidence", "clear_single"),
    ("commonsenseqa", "commonsenseqa", "train", "dev", "disagreement", "cot"),
]


def _run(tmp_path, data: dict, selector: str, annotator: str = "clear") -> dict:
    from flows.elad.loop import active_distillation

    cfg = tiny_config(tmp_path, run_name=f"{data['format']}-{selector}")
    cfg["data"].update(data)
    cfg["selection"]["selector"] = selector
    cfg["teacher"]["annotator"] = annotator
    return active_distillation(RunConfig.model_validate(cfg)), RunConfig.model_validate(cfg)


@pytest.mark.parametrize("data_root", SOURCES)
@pytest.mark.parametrize("fmt,folder,pool,ev,selector,annotator", CASES)
def test_dataset_round(prefect_harness, tmp_path, data_root, fmt, folder, pool, ev, selector, annotator):
    root = data_root / folder
    pool = str(root / pool) if pool.endswith(".json") else pool
    ev = str(root / ev) if ev.endswith(".json") else ev
    summary, cfg = _run(tmp_path, {"format": fmt, "dataset": str(root), "pool_split": pool,
                                   "eval_split": ev}, selector, annotator)
    assert [r["selector"] for r in summary.rounds] == ["random", selector]
    assert [r["annotator"] for r in summary.rounds] == ["cot", annotator]
    assert [r["selected"] for r in summary.rounds] == [8, 4]  # the seed, then per_round
    for r in summary.rounds:
        assert r["annotation_statuses"] == {"ok": r["selected"]}  # the oracle knew every question
    # the student's answers are parsed in the dataset's own family
    family = read_parquet(cfg.run_dir / "data" / "eval.parquet")[0]["family"]
    assert family == {"aqua": "option", "esnli": "label", "commonsenseqa": "option",
                      "strategyqa": "yesno"}[fmt]


@pytest.mark.parametrize("data_root", SOURCES)
def test_strategyqa_is_evaluation_only(prefect_harness, tmp_path, hf_datasets_cache, data_root):
    """StrategyQA carries the BIG-bench canary: it is only evaluated on, never a pool."""
    qa = tmp_path / "yesno.jsonl"
    qa.write_text("".join(json.dumps({"question": f"Is {i} a multiple of 3?",
                                      "answer": "yes" if i % 3 == 0 else "no",
                                      "rationale": f"{i} mod 3 = {i % 3}."}) + "\n"
                          for i in range(40)))
    task = data_root / "strategyqa" / "task.json"
    summary, cfg = _run(tmp_path, {"format": "jsonl", "dataset": str(qa), "pool_split": str(qa),
                                   "family": "yesno", "eval_format": "strategyqa",
                                   "eval_dataset": str(task), "eval_split": str(task)},
                        "self_confidence", "clear_single")
    assert [r["selector"] for r in summary.rounds] == ["random", "self_confidence"]
    ev = read_parquet(cfg.run_dir / "data" / "eval.parquet")
    assert {e["family"] for e in ev} == {"yesno"} and len(ev) == 4


def test_anli_and_generic_jsonl(prefect_harness, tmp_path, hf_datasets_cache):
    """Formats without a public copy here run on files the test writes."""
    rows = [{"premise": f"A person has {i} dogs.", "hypothesis": f"A person has {i % 3} dogs.",
             "label": "e" if i % 3 == i else "c", "reason": "Counting the dogs."} for i in range(30)]
    anli = tmp_path / "anli.jsonl"
    anli.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary, _ = _run(tmp_path, {"format": "anli", "dataset": str(anli), "pool_split": str(anli),
                                 "eval_split": str(anli)}, "egss", "clear")
    assert summary.rounds[-1]["annotations_ok"] == 4

    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"q": f"Is {i} even?", "a": "yes" if i % 2 == 0 else "no",
                                      "why": f"{i} mod 2 = {i % 2}."}) + "\n" for i in range(30)))
    summary, _ = _run(tmp_path, {"format": "jsonl", "dataset": str(qa), "pool_split": str(qa),
                                 "eval_split": str(qa), "family": "yesno",
                                 "fields": {"question": "q", "answer": "a", "rationale": "why"}},
                      "random", "clear_single")
    assert summary.rounds[-1]["annotations_ok"] == 4
