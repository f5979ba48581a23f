"""EvoKD datasets: e-SNLI, SST-2, CoNLL-style NER (WNUT-17) and generic classification
files (issue #6).

Every text becomes a flat `TaskExample`: classification `label` is a label name (e-SNLI:
the text is "Premise: <premise> Hypothesis: <hypothesis>" on one line); NER `text` is the
sentence's tokens joined by single spaces and `label` its BIO tags joined the same way (one
tag per token). Shipped in the package (elad_core/data/, licence notices beside the files):
WNUT-17 (CC BY 4.0, unchanged copies) and a seeded e-SNLI subset (MIT / CC BY-SA 4.0), the
embedded default. SST-2 states no licence and is not shipped: `data.dataset` must name a
folder holding it. Every bad row is a DataError naming file:line: field; nothing is
skipped silently. Also: where each task's files are (dataset roots, split files) and its
closed label set. The k-shot seed draw, the fixed evaluation subset and the oracle's
reserve pool are in elad_core.evokd.splits (docs/design.md §2.5). Pure Python, no Prefect.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from elad_core import SHIPPED_DATA
from elad_core.files import iter_jsonl, text_lines
from elad_core.errors import DataError

SST2_LABELS = ["negative", "positive"]  # SST-2's 0 / 1
ESNLI_LABELS = ["entailment", "neutral", "contradiction"]
PACKAGE_DATA = SHIPPED_DATA
SHIPPED = {"esnli": PACKAGE_DATA / "esnli", "wnut17": PACKAGE_DATA / "wnut17"}
SPLIT_FILES = {
    "sst2": {"train": "stsa.binary.train", "dev": "stsa.binary.dev", "test": "stsa.binary.test"},
    # emerging.test.annotated is the gold test file (the one the HF wnut_17 card uses)
    "wnut17": {"train": "wnut17train.conll", "dev": "emerging.dev.conll",
               "test": "emerging.test.annotated"},
}
ESNLI_COLUMNS = {"s1": "premise", "s2": "hypothesis", "labels": "label"}
SST2_MISSING = ("task 'sst2' needs option 'data.dataset' (--dataset): SST-2 states no licence, "
                "so it is not redistributable and not shipped; pass a folder holding "
                "stsa.binary.{train,dev,test} (`<0/1> <tokenized sentence>` lines), or use "
                "the shipped tasks esnli / wnut17")
DESCRIPTIONS = {
    "esnli": "Natural-language inference on English sentence pairs (e-SNLI / SNLI). Each input "
             "is one line 'Premise: <sentence> Hypothesis: <sentence>'; the label says whether "
             "the premise entails the hypothesis, contradicts it, or neither (neutral).",
    "sst2": "Binary sentiment classification of English movie-review sentences (SST-2).",
    "wnut17": "Named-entity recognition in English tweets and forum posts (WNUT-17: emerging "
              "and rare entities).",
    "classification": "Text classification.",
    "ner": "Named-entity recognition.",
}
DEFAULT_LABELS = {"sst2": SST2_LABELS, "esnli": ESNLI_LABELS}  # label order; else sorted
_TAG = re.compile(r"^(O|[BI]-\S+)$")


@dataclass(frozen=True)
class TaskExample:
    """One labelled text. id: "t" + 12 hex of sha1(text); NER text/label: tokens/tags joined
    by single spaces (equal counts); source: file:line it came from, or who labelled it."""

    id: str
    text: str
    label: str
    source: str = ""

    @property
    def tokens(self) -> list[str]:
        return self.text.split(" ")

    @property
    def tags(self) -> list[str]:
        return self.label.split(" ")


def text_key(text: str) -> str:
    """Lookup key of a text: whitespace collapsed (case kept: it matters for NER)."""
    return " ".join(text.split())


def text_id(text: str) -> str:
    return "t" + hashlib.sha1(text_key(text).encode("utf-8")).hexdigest()[:12]


def load_sst2(path: Path, labels: list[str] = SST2_LABELS) -> list[TaskExample]:
    """SST-2 `<0/1> <tokenised sentence>` lines -> examples labelled labels[0] / labels[1].

    Raises DataError (file:line: field 'label' / 'text') on a bad line; an empty file too.
    """
    out = []
    for lineno, line in text_lines(path):
        where = f"{path}:{lineno}"
        label, _, text = line.partition(" ")
        if label not in ("0", "1"):
            raise DataError(f"{where}: field 'label': expected 0 or 1 before the sentence, got {label[:20]!r}")
        if not text.strip():
            raise DataError(f"{where}: field 'text' is empty")
        out.append(TaskExample(text_id(text), text_key(text), labels[int(label)], where))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def esnli_base(root: Path) -> Path:
    """The folder of e-SNLI's line-aligned files: <root>/eSNLI_preproc if it exists, else root."""
    root = Path(root)
    return root / "eSNLI_preproc" if (root / "eSNLI_preproc").is_dir() else root


def esnli_files(root: Path, split: str) -> list[Path]:
    """e-SNLI's s1 / s2 / labels files of one split suffix (dev, test, ...), in that order.
    "train" reads the dev files when the folder has no s1.train (the shipped subset: the
    line-aligned train files are not in the public snapshot), so seeds and reserve come
    from dev."""
    base = esnli_base(root)
    if split == "train" and not (base / "s1.train").is_file():
        split = "dev"
    return [base / f"{name}.{split}" for name in ESNLI_COLUMNS]


def load_esnli(root: Path, split: str) -> list[TaskExample]:
    """e-SNLI line-aligned `eSNLI_preproc/{s1,s2,labels}.<split>` (premise, hypothesis, gold
    label) -> examples "Premise: <p> Hypothesis: <h>" labelled entailment / neutral /
    contradiction. Raises DataError (file:line: field) on an empty sentence, an unknown
    label, files of different lengths or none at all."""
    paths = esnli_files(root, split)
    cols = [list(text_lines(p)) for p in paths]
    if len({len(c) for c in cols}) != 1:
        sizes = ", ".join(f"{p.name} {len(c)}" for p, c in zip(paths, cols, strict=True))
        raise DataError(f"{paths[0].parent}: line-aligned files differ in length: {sizes} lines")
    out = []
    for (lineno, p), (_, h), (_, label) in zip(*cols, strict=True):
        for path, field, value in ((paths[0], "premise", p), (paths[1], "hypothesis", h)):
            if not value.strip():
                raise DataError(f"{path}:{lineno}: field '{field}' is empty")
        if label.strip() not in ESNLI_LABELS:
            raise DataError(f"{paths[2]}:{lineno}: field 'label': expected one of "
                            f"{', '.join(ESNLI_LABELS)}, got {label[:30]!r}")
        text = f"Premise: {text_key(p)} Hypothesis: {text_key(h)}"
        out.append(TaskExample(text_id(text), text, label.strip(), f"{paths[2]}:{lineno}"))
    if not out:
        raise DataError(f"{paths[2]}: no examples")
    return out


def load_conll(path: Path) -> list[TaskExample]:
    """CoNLL-style NER: `token<TAB>tag` per line, a blank (or whitespace-only) line between
    sentences; tags O / B-<type> / I-<type>. Returns one example per sentence.

    Raises DataError (file:line: field 'token' / 'tag') on a bad line; an empty file too.
    """
    out: list[TaskExample] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 1

    def flush() -> None:
        if tokens:
            text = " ".join(tokens)
            out.append(TaskExample(text_id(text), text, " ".join(tags), f"{path}:{start}"))
        tokens.clear()
        tags.clear()

    for lineno, line in text_lines(path):
        if not line.strip():
            flush()
            start = lineno + 1
            continue
        where = f"{path}:{lineno}"
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{where}: expected 'token<TAB>tag', got {len(parts)} tab-separated fields")
        token, tag = parts[0].strip(), parts[1].strip()
        if not token or len(token.split()) != 1:
            raise DataError(f"{where}: field 'token' is empty or holds whitespace: {parts[0]!r}")
        if not _TAG.match(tag):
            raise DataError(f"{where}: field 'tag': expected O, B-<type> or I-<type>, got {tag!r}")
        tokens.append(token)
        tags.append(tag)
    flush()
    if not out:
        raise DataError(f"{path}: no sentences")
    return out


def _rows(path: Path):
    """("file:line", row dict) of a JSONL or CSV file (CSV: line 1 is the header)."""
    if path.suffix.lower() != ".csv":
        yield from iter_jsonl(path)
        return
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                yield f"{path}:{i}", row
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def load_classification(path: Path, fields: dict[str, str] | None = None) -> list[TaskExample]:
    """A JSONL or CSV classification file; fields maps {"text", "label"} to column names
    (default the same names). Labels are read as strings (1 -> "1").

    Raises DataError (file:line: field '<column>') on a missing or empty value.
    """
    names = {"text": "text", "label": "label", **(fields or {})}
    out = []
    for where, row in _rows(Path(path)):
        values = {}
        for role in ("text", "label"):
            value = row.get(names[role])
            if value is None or isinstance(value, (dict, list)) or not str(value).strip():
                raise DataError(f"{where}: field '{names[role]}' is missing or empty")
            values[role] = text_key(str(value))
        out.append(TaskExample(text_id(values["text"]), values["text"], values["label"], where))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def dataset_root(task: str, dataset: str | None) -> Path:
    """The folder (or file) of a task's data: `dataset`, else the copy shipped in the
    package (elad_core/data/<task>: esnli, wnut17). Raises DataError when no dataset is
    given for sst2 (not redistributable) or a generic task."""
    if dataset:
        return Path(dataset)
    if task == "sst2":
        raise DataError(SST2_MISSING)
    if task not in SHIPPED:
        raise DataError(f"option 'data.dataset': task {task!r} needs a file or folder")
    return SHIPPED[task]


def split_files(task: str, dataset: str | None, split: str) -> list[Path]:
    """Every file one split reads (e-SNLI: its s1, s2, labels files; else split_path)."""
    if task == "esnli":
        return esnli_files(dataset_root(task, dataset), split)
    return [split_path(task, dataset, split)]


def split_path(task: str, dataset: str | None, split: str) -> Path:
    """The file of one split: a file path given as the split, a named task's file (e-SNLI:
    its labels file), or <folder>/<split>.<ext> (jsonl / csv for classification, conll /
    txt for ner)."""
    if task == "esnli":
        return split_files(task, dataset, split)[-1]
    if Path(split).suffix and Path(split).is_file():
        return Path(split)
    root = dataset_root(task, dataset)
    if root.is_file():
        return root
    if task in SPLIT_FILES and split in SPLIT_FILES[task]:
        return root / SPLIT_FILES[task][split]
    exts = ("jsonl", "csv") if task == "classification" else ("conll", "txt")
    for ext in exts:
        if (root / f"{split}.{ext}").is_file():
            return root / f"{split}.{ext}"
    return root / f"{split}.{exts[0]}"  # a missing file: the loader names it


def load_task_split(task: str, dataset: str | None, split: str,
                    fields: dict[str, str] | None = None,
                    labels: list[str] | None = None) -> list[TaskExample]:
    """Examples of one split of any supported task. Raises DataError on bad input."""
    if task == "esnli":
        return load_esnli(dataset_root(task, dataset), split)
    path = split_path(task, dataset, split)
    if task == "sst2":
        return load_sst2(path, labels or SST2_LABELS)
    if task in ("wnut17", "ner"):
        return load_conll(path)
    return load_classification(path, fields)


def entity_types(examples: list[TaskExample]) -> list[str]:
    """Sorted entity types of NER examples' BIO tags."""
    return sorted({t[2:] for e in examples for t in e.tags if t != "O"})


def label_set(kind: str, examples: list[TaskExample], labels: list[str] | None = None) -> list[str]:
    """The closed label set: classification names (given order, else sorted), or the NER
    tags O, B-t, I-t for each type t. Raises DataError when an example's label is not in
    the given classification names."""
    if kind == "ner":
        return ["O"] + [f"{p}-{t}" for t in entity_types(examples) for p in "BI"]
    names = labels or sorted({e.label for e in examples})
    unknown = [e for e in examples if e.label not in names]
    if unknown:
        raise DataError(f"{unknown[0].source}: field 'label': {unknown[0].label!r} is not one "
                        f"of data.labels {names}")
    return list(names)


def example_types(e: TaskExample) -> set[str]:
    """Entity types present in an NER example's tags."""
    return {t[2:] for t in e.tags if t != "O"}

