"""The paper's dataset loaders on small real-format fixtures, and the generic loader (docs/design.md §4).

tests/fixtures/datasets holds a few rows of each dataset in its own files and layout; the
`*_reference_copy` extras re-check the full copies where ../shared/data exists beside the checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURE_DATA, SHARED_DATA, needs_shared

from elad_core.elad.loaders import (
    load_anli,
    load_aqua,
    load_commonsenseqa,
    load_esnli,
    load_generic,
    load_strategyqa,
)
from elad_core.errors import DataError

DATA = FIXTURE_DATA  # a few real rows of each dataset in its own files (strategyqa: made up)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_aqua():
    dev = load_aqua(DATA / "aqua", "dev")
    assert len(dev) == 12 and {e.family for e in dev} == {"option"}
    assert dev[0].answer == "A" and "(A) 32400" in dev[0].question  # options shown to the student
    assert dev[0].question.endswith("\nAnswer Choices: (A) 32400 (B) 6000 (C) 600 (D) 60000 (E) 10")
    assert [e.answer for e in dev] == [json.loads(line)["correct"] for line in _lines(DATA / "aqua/dev.json")]
    # the rationale's lines are the steps, stripped, in order
    assert dev[0].rationale.split("\n")[:2] == ["To calculate the equivalent of miles in a kilometer",
                                                  "0.6 kilometers = 1 mile"]
    assert len({e.id for e in dev}) == 12
    assert [e.answer for e in load_aqua(DATA / "aqua", "test")] == ["A", "E", "A", "B", "B", "D"]


def test_esnli():
    dev = load_esnli(DATA / "esnli", "dev")
    assert len(dev) == 12 and dev[0].answer == "neutral" and {e.family for e in dev} == {"label"}
    assert dev[0].question.startswith("Premise: Two women are embracing")
    assert "\nHypothesis: The sisters are hugging goodbye" in dev[0].question
    assert [e.answer for e in dev] == _lines(DATA / "esnli/eSNLI_preproc/labels.dev")
    # the first explanation file is the rationale, down to its last line (which has no newline)
    expl = DATA / "esnli/eSNLI_preproc/preproc1_expl_1.dev"
    assert not expl.read_bytes().endswith(b"\n")
    assert [e.rationale for e in dev] == [line.strip() for line in _lines(expl)]
    assert dev[0].rationale == "the to go packages may not be from lunch ."
    assert len(load_esnli(DATA / "esnli", "test")) == 6


def test_esnli_misaligned_files_are_an_error(tmp_path):
    base = tmp_path / "esnli" / "eSNLI_preproc"
    base.mkdir(parents=True)
    for f in (DATA / "esnli/eSNLI_preproc").glob("*.dev"):
        (base / f.name).write_bytes(f.read_bytes())
    (base / "s2.dev").write_text("\n".join(_lines(base / "s2.dev")[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line-aligned files differ in length: .*'s2': 11"):
        load_esnli(tmp_path / "esnli", "dev")


def test_commonsenseqa_joined_with_cose():
    dev = load_commonsenseqa(DATA / "commonsenseqa", "dev")
    assert len(dev) == 6 and dev[0].answer == "A" and "(E) new york" in dev[0].question
    assert [e.answer for e in dev] == ["A", "A", "B", "A", "A", "C"]
    # joined on id, not on line order (CoS-E's rows come in another order); the fixture's
    # CoS-E file lacks question 3: that one keeps an empty rationale
    cose = {r["id"]: r["explanation"]["open-ended"] for r in
            map(json.loads, _lines(DATA / "cose/v1.11/cose_dev_v1.11_processed.jsonl"))}
    cqa = [json.loads(line)["id"] for line in _lines(DATA / "commonsenseqa/dev_rand_split.jsonl")]
    assert list(cose) != [i for i in cqa if i in cose]
    assert [e.rationale for e in dev] == [cose.get(i, "") for i in cqa]
    assert sum(bool(e.rationale) for e in dev) == 5 and dev[3].rationale == ""
    train = load_commonsenseqa(DATA / "commonsenseqa", "train")
    assert len(train) == 12 and all(e.rationale for e in train)
    # an explicit CoS-E folder; none there: every rationale empty
    assert load_commonsenseqa(DATA / "commonsenseqa", "dev", DATA / "cose" / "v1.11") == dev
    assert not any(e.rationale for e in load_commonsenseqa(DATA / "commonsenseqa", "dev", DATA / "aqua"))


def test_strategyqa():
    ex = load_strategyqa(DATA / "strategyqa")
    assert len(ex) == 8 and ex[0].answer == "yes" and "ten hours" in ex[0].rationale
    assert [e.answer for e in ex] == ["yes", "no"] * 4 and {e.family for e in ex} == {"yesno"}
    assert ex[0].rationale.startswith("Reading a page")  # the "Yes." verdict is not in it
    assert load_strategyqa(DATA / "strategyqa" / "task.json") == ex  # the folder or the file


# the full reference copies, where a checkout has ../shared/data beside it (extras)
@needs_shared
def test_aqua_reference_copy():
    dev = load_aqua(SHARED_DATA / "aqua", "dev")
    assert len(dev) == 254 and {e.family for e in dev} == {"option"}
    assert dev[0].answer == "A" and "(A) 32400" in dev[0].question


@needs_shared
def test_esnli_reference_copy():
    dev = load_esnli(SHARED_DATA / "esnli", "dev")
    assert len(dev) == 9842 and dev[0].answer == "neutral"
    assert dev[0].question.startswith("Premise: Two women are embracing")


@needs_shared
def test_commonsenseqa_reference_copy():
    dev = load_commonsenseqa(SHARED_DATA / "commonsenseqa", "dev")
    assert len(dev) == 1221 and dev[0].answer == "A" and "(E) new york" in dev[0].question
    assert sum(bool(e.rationale) for e in dev) > 1200  # CoS-E covers (almost) every question


@needs_shared
def test_strategyqa_reference_copy():
    ex = load_strategyqa(SHARED_DATA / "strategyqa")
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


def test_generic_csv_with_field_mapping(tmp_path, hf_datasets_cache):
    f = tmp_path / "qa.csv"
    f.write_text("q,a,why\nIs water wet?,yes,It is.\nIs fire cold?,no,It is hot.\n")
    ex = load_generic(f, {"question": "q", "answer": "a", "rationale": "why"}, "yesno")
    assert [e.answer for e in ex] == ["yes", "no"] and ex[1].rationale == "It is hot."
    with pytest.raises(DataError, match=r"qa.csv:2: field 'nope' is missing"):
        load_generic(f, {"question": "nope"}, "yesno")
