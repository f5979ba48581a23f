"""The benchmark's arithmetic word problems: valid GSM8K format, correct, deterministic."""

from collections import Counter

from elad_core.elad.gsm8k import load_examples
from elad_core.explanations.steps import gsm8k_calculations, split_rationale
from elad_core.synthetic.arithmetic import generate, write_dataset
from elad_core.teacher.oracle.arithmetic import check_step


def test_deterministic_and_distinct():
    a, b = generate(300, seed=5), generate(300, seed=5)
    assert a == b and len({r["question"] for r in a}) == 300
    assert generate(50, seed=6) != generate(50, seed=5)


def test_every_step_is_true_arithmetic_and_chains_to_the_answer():
    for row in generate(300, seed=1):
        steps, answer = split_rationale(row["answer"])
        calcs = gsm8k_calculations(steps)
        assert 1 <= len(calcs) <= 4
        for line in steps.splitlines():
            n_calcs, all_true, _ = check_step(line)
            assert n_calcs >= 1 and all_true, line
        # each step starts from the previous result; the last result is the answer
        for (_, prev), (expr, _) in zip(calcs, calcs[1:]):
            assert expr.startswith(prev)
        assert calcs[-1][1] == answer and 0 <= int(answer) <= 99


def test_steps_spread_over_one_to_four():
    counts = Counter(len(gsm8k_calculations(r["answer"])) for r in generate(2000, seed=0))
    assert set(counts) == {1, 2, 3, 4} and min(counts.values()) > 300


def test_loads_through_the_gsm8k_loader(tmp_path):
    write_dataset(tmp_path, {"train": 40, "test": 10}, seed=2)
    train, test = load_examples(str(tmp_path), "train"), load_examples(str(tmp_path), "test")
    assert len(train) == 40 and len(test) == 10
    assert not {e.id for e in train} & {e.id for e in test}
