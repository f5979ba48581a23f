"""The paper's datasets from ../shared/data and the generic loader (DESIGN §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elad_core.errors import DataError
from elad_core.loaders import (
    load_anli,
    load_aqua,
    load_commonsenseqa,
    load_esnli,
    load_generic,
    load_strategyqa,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


@needs_shared
def test_aqua():
    dev = load_aqua(SHARED / "aqua", "dev")
    assert len(dev) == 254 and {e.family for e in dev} == {"option"}
    assert dev[0].answer == "A" and "(A) 32400" in dev[0].question  # options shown to the student


@needs_shared
def test_esnli():
    dev = load_esnli(SHARED / "esnli", "dev")
    assert len(dev) == 9842 and dev[0].answer == "neutral"
    assert dev[0].question.startswith("Premise: Two women are embracing")


@needs_shared
def test_commonsenseqa_joined_with_cose():
    dev = load_commonsenseqa(SHARED / "commonsenseqa", "dev")
    assert len(dev) == 1221 and dev[0].answer == "A" and "(E) new york" in dev[0].question
    assert sum(bool(e.rationale) for e in dev) > 1200  # CoS-E covers (almost) every question


@needs_shared
def test_strategyqa():
    ex = load_strategyqa(SHARED / "strategyqa")
    assert len(ex) == 2290 and ex[0].answer == "yes" and "Frost" in ex[0].rationale


def test_anli_format(tmp_path):
    f = tmp_path / "anli.jsonl"
    f.write_text(json.dumps({"premise": "A dog runs.", "hypothesis": "An animal moves.",
                             "label": "e", "reason": "Dogs are animals."}) + "\n"
                 + json.dumps({"premise": "x", "hypothesis": "y", "label": "q"}) + "\n")
    with pytest.raises(DataError, match=r"anli.jsonl:2: field 'label'"):
        load_anli(f)
    f.write_text(f.read_text().splitlines()[0] + "\n")
    (e,) = load_anli(f)
    assert e.answer == "entailment" and e.rationale == "Dogs are animals."


def test_generic_csv_with_field_mapping(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text("q,a,why\nIs water wet?,yes,It is.\nIs fire cold?,no,It is hot.\n")
    ex = load_generic(f, {"question": "q", "answer": "a", "rationale": "why"}, "yesno")
    assert [e.answer for e in ex] == ["yes", "no"] and ex[1].rationale == "It is hot."
    with pytest.raises(DataError, match=r"qa.csv:2: field 'nope' is missing"):
        load_generic(f, {"question": "nope"}, "yesno")
