"""Typed round state (elad_core.elad.state): Prefect hashes it for cache keys like plain values,
and a flow takes and returns it (docs/design.md §3)."""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.utilities.hashing import hash_objects

from elad_core.budget import Usage
from elad_core.elad.round_record import RoundRecord
from elad_core.elad.state import (
    AnnotationBatchRef,
    BudgetState,
    DataRefs,
    RoundResult,
    RoundState,
    StudentRef,
)
from elad_core.refs import FileRef


def _state(**update) -> RoundState:
    state = RoundState(
        data=DataRefs(pool="runs/t/data/pool.parquet", pool_sha="a" * 64,
                      eval="runs/t/data/eval.parquet", eval_sha="b" * 64),
        student=StudentRef(base="runs/t/student_base", base_sha="c" * 64),
        weights=FileRef(path="runs/t/round_000/model", sha="d" * 64),
        annotated=("q1", "q2"),
        annotation_files=(AnnotationBatchRef(path="x.parquet", sha="e" * 64, teacher_tokens=10,
                                             cost_usd=0.5, statuses=("ok", "failed")),),
        budget=BudgetState(spent=Usage(100, 0.1), per_annotation=Usage(5, 0.01),
                           estimate={"teacher_tokens": 20, "cost_usd": 0.04, "basis": "x"}))
    return state.model_copy(update=update)


def test_prefect_hashes_equal_states_equally_and_any_changed_field_differently():
    base = hash_objects(_state())
    assert base is not None and hash_objects(_state()) == base
    changed = [
        _state(annotated=("q1", "q3")),
        _state(weights=FileRef(path="runs/t/round_000/model", sha="f" * 64)),
        _state(weights=None),
        _state(api_base="http://127.0.0.1:1/v1"),
        _state(budget=None),
    ]
    keys = {hash_objects(s) for s in changed}
    assert base not in keys and len(keys) == len(changed)


def test_refs_are_frozen_and_strict():
    state = _state()
    with pytest.raises(Exception):
        state.annotated = ()  # type: ignore[misc]
    with pytest.raises(Exception):
        FileRef(path="p", sha="s", rows=3)  # an unknown key is an error, not a silent extra


def test_next_state_grows_D_and_takes_the_rounds_weights():
    state = _state()
    record = RoundRecord.from_manifest({"round": 1, "accuracy": 0.25})
    result = RoundResult(record=record, selected_ids=("q7",),
                         weights=FileRef(path="w", sha="9" * 64),
                         annotation_files=state.annotation_files)
    after = result.next_state(state)
    assert after.annotated == ("q1", "q2", "q7") and after.weights.sha == "9" * 64
    assert after.data == state.data and state.annotated == ("q1", "q2")  # the old one unchanged
    assert after.last_accuracy == 0.25 and result.record is record  # not rebuilt


def test_a_task_with_a_round_state_input_is_cached_on_it(prefect_harness, tmp_path):
    calls = []

    @task(cache_policy=INPUTS, result_storage=tmp_path / ".prefect", persist_result=True)
    def count(state: RoundState) -> int:
        calls.append(1)
        return len(state.annotated)

    @flow
    def twice(a: RoundState, b: RoundState) -> list[str]:
        names = []
        for s in (a, a, b):
            st = count(s, return_state=True)
            names.append(st.name)
        return names

    assert twice(_state(), _state(annotated=("q9",))) == ["Completed", "Cached", "Completed"]
    assert len(calls) == 2
