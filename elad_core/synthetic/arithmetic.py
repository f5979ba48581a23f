"""A seeded generator of GSM8K-format arithmetic word problems (docs/design.md §5).

A measuring instrument for the CPU benchmark, not a dataset of record: a tiny student
trained from scratch cannot learn GSM8K on two CPU cores, but it does learn these in
minutes, and they run through the identical loader, oracle and pipeline. Problems have
1-4 steps, every number within 0-99, operations +, − and × by 2-5, three templates;
every step is one line with a GSM8K `<<a op b=c>>` annotation, the last line `#### N`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from elad_core.files import atomic_write_bytes

NAMES = ("Ava", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena")
ITEMS = ("apples", "stickers", "marbles", "books", "coins", "shells", "cards", "pens")
MAX_VALUE = 99  # every number, intermediate results included, stays within 0..99


@dataclass(frozen=True)
class _Template:
    """Sentences of one story shape; {n} name, {i} item, {a}/{b} numbers, {k} multiplier."""

    start: str
    add: str
    sub: str
    mul: str
    ask: str
    line: str  # rationale line: {lhs} {op} {rhs} = <<...>>{res}


TEMPLATES = (
    _Template("{n} has {a} {i}.", "{n} gets {b} more {i}.", "{n} gives away {b} {i}.",
              "Then the number of {i} {n} has is multiplied by {k}.",
              "How many {i} does {n} have now?", "{n} has {expr} = <<{calc}>>{res} {i}."),
    _Template("A box holds {a} {i}.", "{n} puts {b} more {i} into the box.",
              "{n} takes {b} {i} out of the box.", "The number of {i} in the box grows {k} times.",
              "How many {i} are in the box at the end?", "The box holds {expr} = <<{calc}>>{res} {i}."),
    _Template("{n} starts the week with {a} {i}.", "On the next day {n} finds {b} {i}.",
              "On the next day {n} loses {b} {i}.", "Then {n}'s {i} are multiplied by {k}.",
              "How many {i} does {n} have at the end of the week?",
              "Now {n} has {expr} = <<{calc}>>{res} {i}."),
)


def make_problem(rng: random.Random) -> dict[str, str]:
    """One problem as a GSM8K row: {"question": ..., "answer": steps + "#### N"}."""
    t = TEMPLATES[rng.randrange(len(TEMPLATES))]
    n, i = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(2, 99)
    sentences, lines = [t.start.format(n=n, i=i, a=value)], []
    for _ in range(rng.randint(1, 4)):
        allowed = [op for op, ok in (("+", value < MAX_VALUE), ("-", value > 0),
                                     ("*", 0 < value * 2 <= MAX_VALUE)) if ok]
        op = rng.choice(allowed)
        if op == "+":
            b = rng.randint(1, min(99, MAX_VALUE - value))
            sentences.append(t.add.format(n=n, i=i, b=b))
            new = value + b
        elif op == "-":
            b = rng.randint(1, min(99, value))
            sentences.append(t.sub.format(n=n, i=i, b=b))
            new = value - b
        else:
            b = rng.randint(2, min(5, MAX_VALUE // value))
            sentences.append(t.mul.format(n=n, i=i, k=b))
            new = value * b
        calc = f"{value}{op}{b}={new}"
        lines.append(t.line.format(n=n, i=i, expr=f"{value} {op} {b}", calc=calc, res=new))
        value = new
    sentences.append(t.ask.format(n=n, i=i))
    return {"question": " ".join(sentences), "answer": "\n".join(lines) + f"\n#### {value}"}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    """`n` distinct problems (duplicates re-drawn), deterministic for `seed`."""
    rng, seen, rows = random.Random(seed), set(), []
    while len(rows) < n:
        row = make_problem(rng)
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    return rows


def write_dataset(out_dir: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, Path]:
    """Write `<split>.jsonl` per split (disjoint questions) into out_dir; returns the paths.

    Usable as `data.dataset: <out_dir>` with pool_split/eval_split set to the split names.
    """
    rows = generate(sum(sizes.values()), seed)
    paths, start = {}, 0
    for split, size in sizes.items():
        body = "".join(json.dumps(r) + "\n" for r in rows[start:start + size])
        paths[split] = atomic_write_bytes(Path(out_dir) / f"{split}.jsonl", body.encode("utf-8"))
        start += size
    return paths
