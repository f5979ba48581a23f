"""Write a corpus of replies by a real small instruct model, the answer reader's contract test.

Issue #22 item 1: the answer reader (`elad_core.explanations.answers`) is checked against replies a
real model wrote, not replies written to look like one. This script asks an instruct model
(default SmolLM2-135M-Instruct as a transformers folder) questions of every answer family

- number: GSM8K test questions (`elad_core/data/gsm8k/test.jsonl`, shipped),
- option: AQuA-RAT and CommonsenseQA rows (`tests/fixtures/datasets/{aqua,commonsenseqa}`),
- label: e-SNLI test rows (`elad_core/data/esnli`, shipped),
- yesno: the StrategyQA-format rows (`tests/fixtures/datasets/strategyqa`),

under four prompt styles

- `cot`: the product's teacher prompt (`prompts.cot_messages`: system + "... finish with a
  last line '#### <answer>'"),
- `step_by_step`: the question + "Let's think step by step." (zero-shot CoT, Kojima et al.),
- `answer_is`: the question + "... end with a sentence 'The answer is <answer>.'",
- `plain`: the question alone, no instruction,

at temperatures 0 (greedy), 0.7 and 1.0, with batched `generate` (left padding, one
temperature per batch, prompts sorted by length) and at most `--max-new-tokens` new tokens.
Every (family, style, temperature) cell gets `--per-cell` questions, taken in turn from a
seeded shuffle of the family's pool, so the cells see different questions. Sampling is seeded
per batch: a rerun with the same arguments writes the same file on the same machine and
library versions. On 1 thread of a shared 2-core machine the default 384 replies took 38 min.

One JSON object per line: id, family, dataset, prompt_style, temperature, question, gold,
reply, finished (the model stopped by itself, not at the token limit), new_tokens. The
`label` / `label_note` / `label_review` fields (the answer each reply STATES, by reading) are
added afterwards: `--review` prints the queue to read (`propose_label`'s proposal against the
reader's, every disagreement and a random sample), and the labels are recorded by hand (see
tests/fixtures/real_replies/README.md). `--report` prints the counts and the agreement with
lm-evaluation-harness's GSM8K filters.

    nice -n 5 .venv/bin/python benchmarks/real_replies.py --model smollm2-135m \\
        --out /tmp/replies.jsonl
    .venv/bin/python benchmarks/real_replies.py --review /tmp/replies.jsonl
    .venv/bin/python benchmarks/real_replies.py --report tests/fixtures/real_replies/smollm2_135m.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks._common  # noqa: E402,F401  (offline environment)
from elad_core.elad import prompts  # noqa: E402
from elad_core.elad.loaders import (  # noqa: E402
    load_aqua,
    load_commonsenseqa,
    load_esnli,
    load_strategyqa,
)
from elad_core.explanations.answers import normalize_answer  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "datasets"
STYLES = ("cot", "step_by_step", "answer_is", "plain")
TEMPERATURES = (0.0, 0.7, 1.0)
FAMILIES = ("number", "option", "label", "yesno")
ANSWER_SHAPE = {"number": "<number>", "option": "(<letter>)",
                "label": "<entailment, neutral or contradiction>", "yesno": "<yes or no>"}


def question_pools() -> dict[str, list[dict]]:
    """family -> [{dataset, question, gold}] in file order."""
    pools: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    for line in (ROOT / "elad_core" / "data" / "gsm8k" / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        gold = normalize_answer(row["answer"].rsplit("####", 1)[1], "number")
        pools["number"].append({"dataset": "gsm8k", "question": row["question"], "gold": gold})
    for split in ("dev", "test"):
        for ex in load_aqua(FIXTURES / "aqua", split):
            pools["option"].append({"dataset": "aqua", "question": ex.question, "gold": ex.answer})
        for ex in load_commonsenseqa(FIXTURES / "commonsenseqa",
                                     "train" if split == "dev" else "dev"):
            pools["option"].append({"dataset": "commonsenseqa", "question": ex.question,
                                    "gold": ex.answer})
    for ex in load_esnli(ROOT / "elad_core" / "data" / "esnli", "test"):
        pools["label"].append({"dataset": "esnli", "question": ex.question, "gold": ex.answer})
    for ex in load_strategyqa(FIXTURES / "strategyqa"):
        pools["yesno"].append({"dataset": "strategyqa", "question": ex.question, "gold": ex.answer})
    return pools


def messages(style: str, family: str, question: str) -> list[dict[str, str]]:
    """The chat messages of one prompt style."""
    q = question.strip()
    if style == "cot":
        return prompts.cot_messages(q)
    if style == "step_by_step":
        return [{"role": "user", "content": f"{q}\nLet's think step by step."}]
    if style == "answer_is":
        return [{"role": "user", "content": (
            f"{q}\nThink it through briefly, then end your reply with a sentence of the form "
            f"'The answer is {ANSWER_SHAPE[family]}.'")}]
    if style == "plain":
        return [{"role": "user", "content": q}]
    raise ValueError(f"unknown prompt style {style!r}")


def plan(per_cell: dict[str, int], seed: int) -> list[dict]:
    """Every request: (family, style, temperature) cells, questions dealt from a seeded shuffle."""
    pools = question_pools()
    rng = random.Random(seed)
    rows = []
    for family in FAMILIES:
        pool = list(pools[family])
        rng.shuffle(pool)
        k = 0
        for style in STYLES:
            for temp in TEMPERATURES:
                for _ in range(per_cell[family]):
                    q = pool[k % len(pool)]
                    k += 1
                    rows.append({"id": f"{family}-{style}-t{temp:g}-{len(rows):04d}",
                                 "family": family, "dataset": q["dataset"], "prompt_style": style,
                                 "temperature": temp, "question": q["question"], "gold": q["gold"]})
    return rows


def generate(rows: list[dict], model_path: str, max_new_tokens: int, batch_size: int,
             seed: int, threads: int = 1, sink=None) -> list[dict]:
    """Replies to `rows` (each row + reply, finished, new_tokens); `sink(row)` sees each one
    as soon as it is written (the script appends it to the output file)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)  # one thread: a shared machine's spinning OpenMP pool is slower
    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    # one temperature per generate() call; within a temperature, prompts sorted by length and
    # batched together across families and styles (fewer, fuller batches, little padding)
    by_temp: dict[float, list[tuple[int, str, dict]]] = {}
    for r in rows:
        text = tok.apply_chat_template(messages(r["prompt_style"], r["family"], r["question"]),
                                       tokenize=False, add_generation_prompt=True)
        by_temp.setdefault(r["temperature"], []).append(
            (len(tok(text, add_special_tokens=False)["input_ids"]), text, r))
    out, t0, bi = [], time.time(), 0
    for temp, items in by_temp.items():
        items.sort(key=lambda x: (x[0], x[2]["id"]))
        for b in range(0, len(items), batch_size):
            chunk = items[b:b + batch_size]
            enc = tok([t for _, t, _ in chunk], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            torch.manual_seed(seed * 1000 + bi)
            bi += 1
            kw = dict(do_sample=True, temperature=temp, top_p=1.0, top_k=0) if temp > 0 else \
                dict(do_sample=False)
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=max_new_tokens,
                                     pad_token_id=tok.pad_token_id, **kw)
            new = gen[:, enc["input_ids"].shape[1]:]
            for (_, _, r), ids in zip(chunk, new, strict=True):
                ids = ids.tolist()
                finished = tok.eos_token_id in ids
                if finished:
                    ids = ids[:ids.index(tok.eos_token_id)]
                reply = tok.decode(ids, skip_special_tokens=True)
                out.append({**r, "reply": reply, "finished": finished, "new_tokens": len(ids)})
                if sink is not None:
                    sink(out[-1])
            print(f"batch {bi} (t={temp:g}, {len(chunk)} prompts): {len(out)}/{len(rows)} "
                  f"replies, {time.time() - t0:.0f}s", flush=True)
    return out


# ----------------------------------------------------------------- labelling helper
# A PROPOSER, deliberately simpler than (and independent of) elad_core.explanations.answers: an
# explicit statement (`#### N`, "answer is N", "Answer: N") if there is one, else - for a reply
# whose text ends a sentence - the last candidate of the family anywhere in it (lm-eval's
# flexible-extract idea). Every proposal that the reader does not share, and a random sample of
# the others, is then reviewed by eye; the reviewed label is what the fixture records.
_P_NUM = r"-?\$?\d[\d,]*(?:\.\d+)?"
_P_EXPLICIT = {
    "number": re.compile(rf"(?:####|answer\b[^.\n]{{0,40}}?\b(?:is|:))\s*\**\s*({_P_NUM})", re.I),
    "option": re.compile(r"(?:####|answer\b[^.\n]{0,40}?\b(?:is|:))\s*\**\s*\(?([A-E])\b"),
    "label": re.compile(r"(?:####|answer\b[^.\n]{0,40}?\b(?:is|:))\s*\**\s*"
                        r"(entailment|neutral|contradiction)\b", re.I),
    "yesno": re.compile(r"(?:####|answer\b[^.\n]{0,40}?\b(?:is|:))\s*\**\s*(yes|no)\b", re.I),
}
_P_ANY = {
    "number": re.compile(_P_NUM),
    "option": re.compile(r"\(([A-E])\)|\b([A-E])\)"),
    "label": re.compile(r"\b(entailment|neutral|contradiction)\b", re.I),
    "yesno": re.compile(r"(?:^|[.!]\s+)(yes|no)\b", re.I | re.M),
}


def propose_label(reply: str, family: str) -> tuple[str | None, str]:
    """(proposed label, why) for one reply; see the comment above."""
    hits = _P_EXPLICIT[family].findall(reply)
    if hits:
        return normalize_answer(hits[-1], family), "explicit statement"
    if not re.search(r"[.!?)*]\s*$", reply.rstrip()):
        return None, "text ends mid-sentence"
    hits = [h if isinstance(h, str) else next(g for g in h if g) for h in _P_ANY[family].findall(reply)]
    if hits:
        return normalize_answer(hits[-1], family), "last candidate in the reply"
    return None, "no candidate"


def review_queue(path: Path, seed: int, sample: int = 60) -> None:
    """Print, for labelling by eye, the replies where propose_label and the reader differ, then
    a seeded random sample of the others (each with its last 600 characters)."""
    from elad_core.explanations.answers import extract_answer

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    differ, agree = [], []
    for r in rows:
        ours = extract_answer(r["reply"], r["family"], question=r["question"])
        proposed = propose_label(r["reply"], r["family"])
        (differ if ours[0] != proposed[0] else agree).append((r, ours, proposed))
    picked = random.Random(seed).sample(agree, min(sample, len(agree)))
    for title, items in (("PROPOSER AND READER DIFFER", differ), ("RANDOM SAMPLE", picked)):
        print(f"######## {title}: {len(items)}")
        for r, ours, proposed in items:
            print(f"===== {r['id']} finished={r.get('finished')} reader={ours} proposed={proposed}")
            print(r["reply"][-600:])

# ----------------------------------------------------------------- lm-evaluation-harness filters
# lm_eval/tasks/gsm8k/gsm8k.yaml (version 3.0): filter_list "strict-match" = regex
# `#### (\-?[0-9\.\,]+)` then take_first (the regex filter's group_select 0: the FIRST match);
# "flexible-extract" = regex `(-?[$0-9.,]{2,})|(-?[0-9]+)` with group_select -1 (the LAST
# match; of its groups the non-empty one). No match: "[invalid]". The exact_match metric then
# ignores `,`, `\$`, `(?s).*#### ` and `\.$` (regexes_to_ignore) on both sides.
LM_EVAL_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
LM_EVAL_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
LM_EVAL_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


def lm_eval_filter(reply: str, regex: re.Pattern, group_select: int) -> str:
    """lm_eval.filters.extraction.RegexFilter.apply on one response, then regexes_to_ignore."""
    match = regex.findall(reply)
    if not match:
        return "[invalid]"
    match = match[group_select]
    if isinstance(match, tuple):
        match = [m for m in match if m][0]
    out = match.strip()
    for pattern in LM_EVAL_IGNORE:
        out = re.sub(pattern, "", out)
    return out


def lm_eval_value(filtered: str) -> str | None:
    """An lm-eval filtered string as our normalised number (None for '[invalid]' / no digit)."""
    if filtered == "[invalid]" or not re.search(r"\d", filtered):
        return None
    return normalize_answer(filtered, "number")



# ----------------------------------------------------------------- report
def report(path: Path) -> dict:
    """Counts per family and rule on the labelled corpus, the contract figures, and the
    agreement with lm-evaluation-harness's GSM8K filters on the number replies."""
    from elad_core.explanations.answers import extract_answer

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict = {"replies": len(rows), "families": {}, "lm_eval": {}}
    for family in FAMILIES:
        fam = [r for r in rows if r["family"] == family]
        rules: dict[str, int] = {}
        stated = read_ok = wrong = false_reads = 0
        for r in fam:
            answer, rule = extract_answer(r["reply"], family, question=r["question"])
            rules[rule or "none"] = rules.get(rule or "none", 0) + 1
            if r["label"] is None:
                false_reads += answer is not None
            else:
                stated += 1
                read_ok += answer == r["label"]
                wrong += answer not in (None, r["label"])
        out["families"][family] = {"replies": len(fam), "stated": stated, "read": read_ok,
                                   "read_wrong": wrong, "silent": len(fam) - stated,
                                   "false_reads": false_reads, "rules": rules}
    nums = [r for r in rows if r["family"] == "number"]
    for name, regex, select in (("strict-match", LM_EVAL_STRICT, 0),
                                ("flexible-extract", LM_EVAL_FLEXIBLE, -1)):
        cats: dict[str, list[str]] = {}
        agree = theirs_right = 0
        for r in nums:
            ours = extract_answer(r["reply"], "number", question=r["question"])
            theirs = lm_eval_value(lm_eval_filter(r["reply"], regex, select))
            theirs_right += r["label"] is not None and theirs == r["label"]
            if theirs == ours[0]:
                agree += 1
                continue
            cats.setdefault(_disagreement(r, ours, theirs, name), []).append(r["id"])
        stated = sum(r["label"] is not None for r in nums)
        out["lm_eval"][name] = {"agree": agree, "of": len(nums),
                                "reads_the_stated_answer": theirs_right, "of_stated": stated,
                                "disagreements": {k: len(v) for k, v in sorted(cats.items())},
                                "ids": cats}
    return out


def _disagreement(r: dict, ours: tuple, theirs: str | None, name: str) -> str:
    """A coarse category for one disagreement with an lm-eval filter (the report explains them)."""
    answer, rule = ours
    label = r.get("label")
    if name == "strict-match":
        if theirs is None:
            return f"no line lm-eval's `#### (\\-?[0-9\\.\\,]+)` matches; ours by rule {rule}"
        if answer is None:
            return "`#### N` is protocol echo / cut-off copy; ours none"
        return f"several `#### N` lines or a later statement: lm-eval takes the FIRST, ours {rule}"
    if answer is None and theirs is not None:
        if label is None:
            if not r["reply"].rstrip().endswith((".", "!", "?", ")", "*")):
                return "lm-eval reads a number of a reply cut off mid-sentence (label: none)"
            return "lm-eval reads a number where the reply states none (label: none)"
        return "ours misses a stated answer"
    if theirs is None:
        return f"lm-eval finds no number; ours by rule {rule}"
    if answer == label:
        return f"both read, lm-eval's last number is not the stated answer; ours ({rule}) = label"
    if theirs == label:
        return "both read, lm-eval = label, ours differs"
    return "both read, neither equals the label"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m",
                    help="student.model: a packaged short name, a .gguf file or a model folder")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "tests" / "fixtures" / "real_replies" / "smollm2_135m.jsonl")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--per-cell", default="number=12,option=8,label=6,yesno=6",
                    help="questions per (family, style, temperature) cell")
    ap.add_argument("--limit", type=int, default=0, help="only the first N requests (timing)")
    ap.add_argument("--report", type=Path, metavar="CORPUS",
                    help="print counts and lm-eval agreement for a labelled corpus; no generation")
    ap.add_argument("--review", type=Path, metavar="CORPUS",
                    help="print the labelling review queue of a corpus: every reply where the "
                         "proposer and the reader differ, then a seeded sample of 60 others")
    a = ap.parse_args()
    if a.report:
        print(json.dumps(report(a.report), indent=1))
        return
    if a.review:
        review_queue(a.review, a.seed)
        return
    per_cell = {k: int(v) for k, v in (p.split("=") for p in a.per_cell.split(","))}
    rows = plan(per_cell, a.seed)
    if a.limit:
        rows = rows[:a.limit]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", encoding="utf-8") as fh:
        def sink(row: dict) -> None:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()

        from elad_core.student.catalog import resolve_student

        out = generate(rows, resolve_student(a.model).path, a.max_new_tokens, a.batch_size, a.seed, a.threads, sink)
    print(f"wrote {len(out)} replies to {a.out}")


if __name__ == "__main__":
    main()
