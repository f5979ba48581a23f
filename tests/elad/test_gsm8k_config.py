"""GSM8K-format data loading (elad_core.elad.gsm8k) and config errors: clear messages
naming file, line and field."""

import json

import pytest

from elad_core.elad.config import RunConfig, load_config
from elad_core.elad.duplicates import DuplicateReport
from elad_core.elad.gsm8k import (
    load_examples,
    load_examples_report,
    question_id,
    subset,
)
from elad_core.errors import ConfigError, DataError


def test_embedded_gsm8k_loads():
    test = load_examples("gsm8k", "test")
    assert len(test) == 1319  # GSM8K's test split
    first = test[0]
    assert first.id == question_id(first.question) and first.answer is not None
    assert "####" not in first.rationale


def test_file_path_and_subset(tmp_path):
    f = tmp_path / "mini.jsonl"
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i}+1=<<{i}+1={i+1}>>{i+1}\n#### {i+1}"}
            for i in range(10)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ex = load_examples(str(tmp_path), "mini")
    assert [e.answer for e in ex] == [str(i + 1) for i in range(10)]
    s1, s2 = subset(ex, 4, seed=1), subset(ex, 4, seed=1)
    assert s1 == s2 and len(s1) == 4


@pytest.mark.parametrize("line,message", [
    ('{"question": "q?", "answer": "1\\n#### 1"', "not valid JSON"),
    ('{"question": "", "answer": "#### 1"}', "field 'question' is empty"),
    ('{"answer": "#### 1"}', "field 'question' is missing"),
    ('{"question": "q?", "answer": "no mark"}', "no final '#### <answer>' line"),
    ('{"question": "q?", "answer": "#### many"}', "cannot read a number"),
])
def test_bad_rows_name_file_line_field(tmp_path, line, message):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "ok?", "answer": "#### 2"}\n' + line + "\n")
    with pytest.raises(DataError) as exc:
        load_examples(str(f), str(f))
    assert f"{f}:2" in str(exc.value) and message in str(exc.value)


def test_repeated_question_with_the_same_answer_is_merged_and_counted(tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text('{"question": "Same?", "answer": "#### 1"}\n' * 2
                 + '{"question": "  same? ", "answer": "1 it is\\n#### 1"}\n'
                 + '{"question": "Other?", "answer": "#### 2"}\n')
    examples, report = load_examples_report(str(f), str(f))
    assert [e.question for e in examples] == ["Same?", "Other?"]
    assert report == DuplicateReport(merged=2, conflicting=0, removed=0)
    assert report.describe("pool", "error").startswith("pool: merged 2 repeated question(s)")


def test_repeated_question_with_another_answer_is_an_error_unless_a_policy_says(tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text('{"question": "Same?", "answer": "#### 1"}\n{"question": "x?", "answer": "#### 3"}\n'
                 '{"question": "Same?", "answer": "#### 2"}\n{"question": "Same?", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"dup.jsonl:3: field 'question' duplicates line 1 .*"
                                        r"another answer \('2', there '1'\)"):
        load_examples(str(f), str(f))
    first, rep = load_examples_report(str(f), str(f), on_duplicate="first")
    assert [(e.question, e.answer) for e in first] == [("Same?", "1"), ("x?", "3")]
    assert rep == DuplicateReport(merged=1, conflicting=1, removed=1)
    dropped, rep = load_examples_report(str(f), str(f), on_duplicate="drop")
    assert [e.question for e in dropped] == ["x?"]
    assert rep == DuplicateReport(merged=1, conflicting=1, removed=2)


def test_generic_loader_merges_repeats_too(tmp_path):
    from elad_core.elad.loaders import load_split_report

    f = tmp_path / "qa.csv"
    f.write_text("q,a\nHow many?,3\nHow many?,3\nWhy?,4\nWhy?,5\n")
    with pytest.raises(DataError, match=r"qa.csv:5: field 'question' duplicates line 4"):
        load_split_report("jsonl", str(f), str(f), "number", {"question": "q", "answer": "a"})
    ex, rep = load_split_report("jsonl", str(f), str(f), "number",
                                {"question": "q", "answer": "a"}, on_duplicate="first")
    assert len(ex) == 2 and rep.merged == 1 and rep.conflicting == 1


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_examples(str(tmp_path), "nope")


def test_config_defaults_and_errors(tmp_path):
    assert RunConfig().selection.selector == "egss"
    with pytest.raises(ConfigError, match="selector"):
        load_config(None, {"selection.selector": "bogus"})
    y = tmp_path / "c.yaml"
    y.write_text("student:\n  k_samplez: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: option 'student.k_samplez'"):
        load_config(y)
    y.write_text("rounds: 2\nselection:\n  per_round: 8\n")
    cfg = load_config(y, {"rounds": 5})
    assert cfg.rounds == 5 and cfg.selection.per_round == 8


def test_unreachable_hub_dataset_is_one_clear_error():
    # offline (HF_DATASETS_OFFLINE=1): a hub id that is not cached fails with a DataError
    with pytest.raises(DataError, match="hub load failed"):
        load_examples("someone/not-a-local-dataset", "train")
