"""GSM8K-format data loading on top of `datasets` (docs/design.md §2.1).

A source is the embedded GSM8K copy (`gsm8k`, MIT, shipped in elad_core/data/gsm8k), a
folder holding `<split>.jsonl`, a `.jsonl` file given as the split, or a hub dataset id.
Rows are JSON objects with `question` and `answer` (steps, last line `#### N`). Every bad
row is a DataError naming file, line and field; nothing is skipped silently. The paper's
other datasets and the generic JSONL / CSV format are read by elad_core.elad.loaders, which
builds on this module (question ids, source fingerprints, the GSM8K loader).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from elad_core import SHIPPED_DATA
from elad_core.elad.duplicates import DuplicateReport, merge_duplicates
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.steps import split_rationale
from elad_core.explanations.records import Example
from elad_core.errors import DataError
from elad_core.files import iter_jsonl
from elad_core.seeds import seeded_subset

EMBEDDED_DIR = SHIPPED_DATA
MAX_QUESTION_CHARS = 20_000  # a longer "question" is a broken row (GSM8K's longest: ~1,000)
EMBEDDED = {"gsm8k": EMBEDDED_DIR / "gsm8k"}


def question_id(question: str) -> str:
    """Stable id: 'q' + 12 hex chars of sha1 over the lower-cased, whitespace-collapsed text."""
    norm = " ".join(question.lower().split())
    return "q" + hashlib.sha1(norm.encode("utf-8")).hexdigest()[:12]


def resolve_split(dataset: str, split: str) -> Path | None:
    """Local file for (dataset, split), or None when `dataset` should be read from the hub."""
    if split.endswith((".jsonl", ".json")):
        return Path(split)
    if dataset in EMBEDDED:
        return EMBEDDED[dataset] / f"{split}.jsonl"
    path = Path(dataset)
    if path.is_dir():
        return path / f"{split}.jsonl"
    if path.suffix in (".jsonl", ".json") or path.exists():
        return path
    return None


def source_fingerprint(dataset: str, splits: list[str]) -> dict[str, str]:
    """What decides a load's content: sha256 of each local split file, or the hub id.

    Used as a cache key by the data task (docs/design.md §3: cache on content, not on names).
    """
    from elad_core.files import hash_file

    out = {}
    for split in splits:
        path = resolve_split(dataset, split)
        out[split] = hash_file(path) if path is not None and path.is_file() else f"hub:{dataset}"
    return out


def _read_jsonl(path: Path) -> list[dict]:
    """Every row of a GSM8K-format JSONL file, each validated; DataError at the first bad one."""
    rows = []
    for where, row in iter_jsonl(path):
        _check_row(row, where)
        rows.append(row)
    return rows


def _check_row(row: dict, where: str) -> None:
    for field in ("question", "answer"):
        value = row.get(field)
        if value is None:
            raise DataError(f"{where}: field '{field}' is missing")
        if not isinstance(value, str):
            raise DataError(f"{where}: field '{field}' is not a string "
                            f"(got {type(value).__name__})")
        if not value.strip():
            raise DataError(f"{where}: field '{field}' is empty")
    if len(row["question"]) > MAX_QUESTION_CHARS:
        raise DataError(f"{where}: field 'question' is {len(row['question']):,} characters long, "
                        f"over the limit of {MAX_QUESTION_CHARS:,}")
    _, raw = split_rationale(row["answer"])
    if raw is None:
        raise DataError(f"{where}: field 'answer' has no final '#### <answer>' line")


def _to_examples(rows: list[dict], where: str, family: str) -> tuple[list[Example], list[str]]:
    """(examples, their locations "where:row") of GSM8K-format rows, every row checked."""
    examples: list[Example] = []
    for index, row in enumerate(rows, start=1):
        loc = f"{where}:{index}"
        _check_row(row, loc)
        steps, raw = split_rationale(row["answer"])
        answer = normalize_answer(raw or "", family)
        if answer is None:
            raise DataError(f"{loc}: field 'answer': cannot read a {family} from {raw!r}")
        examples.append(Example(question_id(row["question"]), row["question"].strip(), steps,
                                answer, family))
    return examples, [f"{where}:{i}" for i in range(1, len(rows) + 1)]


def load_examples(dataset: str, split: str, hub_config: str | None = None,
                  family: str = "number", on_duplicate: str = "error") -> list[Example]:
    """All examples of one split, in file order, repeated questions merged
    (elad_core.elad.duplicates; `on_duplicate` decides conflicting copies).

    Returns list[Example]. Raises DataError (file:line: field ...) on bad input.
    """
    return load_examples_report(dataset, split, hub_config, family, on_duplicate)[0]


def load_examples_report(dataset: str, split: str, hub_config: str | None = None,
                         family: str = "number", on_duplicate: str = "error"
                         ) -> tuple[list[Example], DuplicateReport]:
    """load_examples and what merging repeated questions did."""
    path = resolve_split(dataset, split)
    if path is not None:  # read here: line numbers stay exact, no cache is written
        examples, where = _to_examples(_read_jsonl(path), str(path), family)
        return merge_duplicates(examples, where, on_duplicate)
    import datasets  # heavy import, kept local

    try:
        ds = datasets.load_dataset(dataset, hub_config, split=split)
    except Exception as exc:  # hub errors are many and deep: one clear line instead
        raise DataError(
            f"dataset {dataset!r} split {split!r}: not a local file or folder, and the hub "
            f"load failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    examples, where = _to_examples(ds.to_list(), f"{dataset}[{split}] row", family)
    return merge_duplicates(examples, where, on_duplicate)


def subset(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    """A seeded random subset of `size` examples (file order kept); all when size is None."""
    return seeded_subset(examples, size, seed)
