"""Zero-shot accuracy of a real instruct student with and without its chat template, in one run.

Issue #21 item 2: `student.chat_template: auto` wraps the question in the model's chat
template (user turn: question + the `#### <answer>` instruction; the explanation is the
assistant's reply) when its tokenizer has one. This script measures what that does to the
untrained student: greedy explanations of held-out questions through the product's own
`evaluate`, with the plain `Question: …\\nAnswer:` prompt and with the chat template, scored
strict (`#### N` line, the trained format) and flexible (the reply reader's last-number rule,
as lm-evaluation-harness's GSM8K `flexible-extract`). Tasks: the seeded arithmetic task
(elad_core/synthetic) and GSM8K's test split (shipped).

    .venv/bin/python benchmarks/chat_template.py [--student smollm2-135m] [--n 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchmarks._common  # noqa: E402,F401  (offline environment)
from elad_core.elad.gsm8k import load_examples  # noqa: E402
from elad_core.explanations.prompt import chat_prompt_template  # noqa: E402
from elad_core.student.catalog import resolve_student  # noqa: E402
from elad_core.student.evaluation import evaluate  # noqa: E402
from elad_core.student.model import load_student  # noqa: E402
from elad_core.synthetic.arithmetic import write_dataset  # noqa: E402

GSM8K = Path(__file__).resolve().parents[1] / "elad_core" / "data" / "gsm8k" / "test.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="smollm2-135m", help="student.model (name, .gguf, folder)")
    ap.add_argument("--n", type=int, default=64, help="held-out questions per task")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/chat_template.json"))
    a = ap.parse_args()

    resolved = resolve_student(a.student)
    model, tok = load_student(resolved.path)
    template = chat_prompt_template(tok)
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp), {"test": a.n}, seed=1)
        tasks = {"arithmetic": load_examples(tmp, "test"),
                 "gsm8k": load_examples(str(GSM8K.parent), "test")[:a.n]}
    rows = []
    for task, examples in tasks.items():
        for prompt in ("plain", "chat"):
            t0 = time.perf_counter()
            res = evaluate(model, tok, examples, a.max_new_tokens, a.batch_size, progress=True,
                           template=template if prompt == "chat" else None)
            rows.append({"task": task, "prompt": prompt, "n": res.n, "accuracy": res.accuracy,
                         "parse_rate": res.parse_rate, "flexible_accuracy": res.flexible_accuracy,
                         "flexible_parse_rate": res.flexible_parse_rate,
                         "wall_s": round(time.perf_counter() - t0, 1),
                         "example": res.predictions[0]["prediction"][:300]})
    print(f"\nzero-shot, {a.student} ({resolved.path}), greedy, {a.max_new_tokens} new tokens:")
    print("| task | prompt | n | strict acc | strict parse | flexible acc | flexible parse |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['prompt']} | {r['n']} | {r['accuracy']:.1%} | "
              f"{r['parse_rate']:.1%} | {r['flexible_accuracy']:.1%} | {r['flexible_parse_rate']:.1%} |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"student": a.student, "gguf_sha256": resolved.sha,
                                 "template": template, "rows": rows}, indent=1), encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
