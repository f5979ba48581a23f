"""Loaders for the paper's other datasets and a generic JSONL/CSV format (docs/design.md §4).

Each turns its source files into `Example` records with the answer family the dataset
needs: AQuA and CommonsenseQA (option letters A-E), e-SNLI and ANLI (entailment /
neutral / contradiction), StrategyQA (yes / no). Options are written into the question
text so the student sees them. Every bad row is a DataError naming file, line and field.
GSM8K itself is read by elad_core.elad.gsm8k (question ids and source fingerprints too).
"""

from __future__ import annotations

import json
from pathlib import Path

from elad_core import SHIPPED_DATA
from elad_core.files import iter_jsonl
from elad_core.elad.gsm8k import load_examples_report, question_id, source_fingerprint
from elad_core.elad.duplicates import DuplicateReport, merge_duplicates
from elad_core.explanations.answers import normalize_answer
from elad_core.explanations.records import Example
from elad_core.errors import DataError

ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}
FORMAT_FAMILY = {"gsm8k": "number", "aqua": "option", "commonsenseqa": "option",
                 "esnli": "label", "anli": "label", "strategyqa": "yesno"}
# the e-SNLI subset shipped in the package (SOURCE.txt there): read for dataset "esnli"
SHIPPED_ESNLI = SHIPPED_DATA / "esnli"
NLI_QUESTION = ("Premise: {p}\nHypothesis: {h}\nDoes the premise entail the hypothesis? "
                "Answer entailment, neutral or contradiction.")


def _field(row: dict, name: str, where: str, kind: type = str):
    value = row.get(name)
    if value is None:
        raise DataError(f"{where}: field '{name}' is missing")
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise DataError(f"{where}: field '{name}' is empty or not a {kind.__name__}")
    return value


def _answer(raw: str, family: str, where: str, name: str) -> str:
    answer = normalize_answer(raw, family)
    if answer is None:
        raise DataError(f"{where}: field '{name}': cannot read a {family} answer from {raw!r}")
    return answer


def _example(question: str, rationale: str, answer: str, family: str) -> Example:
    steps = "\n".join(line.strip() for line in rationale.splitlines() if line.strip())
    return Example(question_id(question), question.strip(), steps, answer, family)


def _with_options(question: str, options: list[str]) -> str:
    return f"{question.strip()}\nAnswer Choices: " + " ".join(f"({o[0]}) {o[2:].strip()}"
                                                             if o[1:2] == ")" else o for o in options)


def load_aqua(root: Path, split: str) -> list[Example]:
    """AQuA-RAT `<split>.json` (JSONL: question, options ["A)…"], rationale, correct)."""
    out = []
    for where, row in iter_jsonl(Path(root) / f"{split}.json"):
        options = _field(row, "options", where, list)
        q = _with_options(_field(row, "question", where), options)
        out.append(_example(q, row.get("rationale") or "",
                            _answer(_field(row, "correct", where), "option", where, "correct"), "option"))
    return out


def load_esnli(root: Path, split: str) -> list[Example]:
    """e-SNLI line-aligned files `eSNLI_preproc/{s1,s2,labels,preproc1_expl_1}.<split>`."""
    base = Path(root) / "eSNLI_preproc"
    cols = {}
    for name in ("s1", "s2", "labels", "preproc1_expl_1"):
        path = base / f"{name}.{split}"
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        cols[name] = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    lengths = {n: len(v) for n, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{base}: line-aligned files differ in length: {lengths}")
    out = []
    for i, (p, h, label, expl) in enumerate(zip(*cols.values(), strict=True), start=1):
        where = f"{base / f'labels.{split}'}:{i}"
        q = NLI_QUESTION.format(p=p.strip(), h=h.strip())
        out.append(_example(q, expl, _answer(label, "label", where, "label"), "label"))
    return out


def load_commonsenseqa(root: Path, split: str, explanations: Path | None = None) -> list[Example]:
    """CommonsenseQA v1.11 `<split>_rand_split.jsonl` joined on id with CoS-E explanations.

    explanations: CoS-E folder with `cose_<split>_v1.11_processed.jsonl` (default: a `cose/v1.11`
    folder beside `root`). Questions without an explanation keep an empty rationale.
    """
    cose_dir = explanations or Path(root).parent / "cose" / "v1.11"
    cose_file = Path(cose_dir) / f"cose_{split}_v1.11_processed.jsonl"
    expl = {}
    if cose_file.is_file():
        expl = {r["id"]: r.get("explanation", {}).get("open-ended", "") for _, r in iter_jsonl(cose_file)}
    out = []
    for where, row in iter_jsonl(Path(root) / f"{split}_rand_split.jsonl"):
        q = _field(row, "question", where, dict)
        choices = [f"{c['label']}) {c['text']}" for c in q.get("choices", [])]
        if len(choices) != 5:
            raise DataError(f"{where}: field 'question.choices' must hold 5 options")
        question = _with_options(_field(q, "stem", where), choices)
        answer = _answer(_field(row, "answerKey", where), "option", where, "answerKey")
        out.append(_example(question, expl.get(row.get("id"), ""), answer, "option"))
    return out


def load_strategyqa(path: Path) -> list[Example]:
    """StrategyQA (BIG-bench task.json: examples[].input, target "Yes. <explanation>").

    Evaluation only: the file carries the BIG-bench canary string.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "task.json"
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a BIG-bench task.json with 'examples' ({exc})") from None
    out = []
    for i, row in enumerate(examples):
        where = f"{path}: examples[{i}]"
        target = _field(row, "target", where)
        verdict, _, rest = target.partition(".")
        out.append(_example(_field(row, "input", where), rest,
                            _answer(verdict, "yesno", where, "target"), "yesno"))
    return out


def load_anli(path: Path) -> list[Example]:
    """ANLI JSONL (premise, hypothesis, label e/n/c or the full word, reason)."""
    out = []
    for where, row in iter_jsonl(Path(path)):
        label = _field(row, "label", where)
        label = ANLI_LABELS.get(label.strip().lower(), label)
        q = NLI_QUESTION.format(p=_field(row, "premise", where).strip(),
                                h=_field(row, "hypothesis", where).strip())
        out.append(_example(q, row.get("reason") or "", _answer(label, "label", where, "label"), "label"))
    return out


def load_generic(path: Path, fields: dict[str, str], family: str) -> list[Example]:
    """Any JSONL or CSV file with a field mapping {question, answer[, rationale]} (via `datasets`)."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    kind = "csv" if path.suffix.lower() == ".csv" else "json"
    try:
        rows = datasets.load_dataset(kind, data_files=str(path), split="train").to_list()
    except Exception as exc:  # the reader's errors are deep: one clear line instead
        raise DataError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0][:200]}") from None
    names = {"question": "question", "answer": "answer", "rationale": "rationale", **fields}
    out = []
    for i, row in enumerate(rows, start=1):
        where = f"{path}:{i + (kind == 'csv')}"  # csv: line 1 is the header
        question = str(_field(row, names["question"], where, object))
        raw = str(_field(row, names["answer"], where, object))
        out.append(_example(question, str(row.get(names["rationale"]) or ""),
                            _answer(raw, family, where, names["answer"]), family))
    return out


def load_split(fmt: str, dataset: str, split: str, family: str, fields: dict[str, str],
               hub_config: str | None = None, on_duplicate: str = "error") -> list[Example]:
    """Examples of one split in any supported format (DataConfig.format), repeated questions
    merged (elad_core.elad.duplicates). DataError on bad input.

    For the single-file formats (strategyqa, anli, jsonl) `split` may be the file itself.
    """
    return load_split_report(fmt, dataset, split, family, fields, hub_config, on_duplicate)[0]


def load_split_report(fmt: str, dataset: str, split: str, family: str, fields: dict[str, str],
                      hub_config: str | None = None, on_duplicate: str = "error"
                      ) -> tuple[list[Example], DuplicateReport]:
    """load_split and what merging repeated questions did (counts for summary.json)."""
    if fmt == "gsm8k":
        return load_examples_report(dataset, split, hub_config, family, on_duplicate)
    root = _root(fmt, dataset)
    single = Path(split) if split.endswith((".json", ".jsonl", ".csv")) else root
    if fmt == "aqua":
        examples, where = load_aqua(root, split), f"{root}/{split}"
    elif fmt == "esnli":
        examples, where = load_esnli(root, split), f"{root} {split}"
    elif fmt == "commonsenseqa":
        examples, where = load_commonsenseqa(root, split), f"{root} {split}"
    elif fmt == "strategyqa":
        examples, where = load_strategyqa(single), f"{single} item"
    elif fmt == "anli":
        path = single if single.is_file() else root / f"{split}.jsonl"
        examples, where = load_anli(path), str(path)
    elif fmt == "jsonl":
        if not single.is_file() and root.is_dir():
            csv = root / f"{split}.csv"
            single = csv if csv.is_file() else root / f"{split}.jsonl"
        examples, where = load_generic(single, fields, family), str(single)
    else:
        raise DataError(f"unknown data format {fmt!r}")
    header = 1 if fmt == "jsonl" and single.suffix.lower() == ".csv" else 0
    locations = [f"{where}:{i + 1 + header}" for i in range(len(examples))]
    return merge_duplicates(examples, locations, on_duplicate)


def _root(fmt: str, dataset: str) -> Path:
    """The dataset folder; format esnli with dataset "esnli" (no such folder): the shipped subset."""
    if fmt == "esnli" and dataset == "esnli" and not Path(dataset).is_dir():
        return SHIPPED_ESNLI
    return Path(dataset)


def fingerprint(fmt: str, dataset: str, splits: list[str]) -> dict[str, str]:
    """Content hash of what a load reads (cache key of the data task, docs/design.md §3)."""
    from elad_core.files import hash_dir, hash_file

    if fmt == "gsm8k":
        return source_fingerprint(dataset, splits)
    path = _root(fmt, dataset)
    if path.is_dir():
        return {"dir": hash_dir(path)}
    return {"file": hash_file(path) if path.is_file() else f"missing:{dataset}"}
