"""What each annotator costs the teacher on a real student's explanations (issue #21 item 3).

A pretrained student (default: SmolLM2-135M-Instruct converted to a transformers folder) samples
one explanation per GSM8K question; `annotate_batch` runs `cot`, `clear` and `clear_single`
on them against the oracle teacher (docs/design.md §2.4: a test double that answers from the
gold solutions, usage counted with gpt-3.5-turbo's tokenizer). Per annotator it reports the
mean prompt / completion / total teacher tokens and requests per question, the ratio to `cot`,
and how the budget's estimates (elad_core/budget.py) compare with what was spent: the a-priori
estimate (before any round), and the measured one (the first half of the questions taken as an
earlier round, predicting the second half).

    .venv/bin/python benchmarks/clear_cost.py            # SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/clear_cost.py --samples /tmp/samples.json --tag after

The sampled explanations can be saved and reused (`--samples FILE`: read when it exists,
written otherwise), so two versions of the annotators are compared on the same explanations.
Results: a table on stdout and benchmarks/results/clear_cost.json (one entry per `--tag`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (offline environment, checkout on sys.path)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "clear_cost.json"
ANNOTATORS = ("cot", "clear", "clear_single")


def gsm8k_examples(n: int) -> list:
    """The first n rows of the embedded GSM8K train split, as Examples."""
    from elad_core.elad.gsm8k import resolve_split
    from elad_core.explanations.answers import normalize_answer
    from elad_core.explanations.steps import split_rationale
    from elad_core.explanations.records import Example

    out = []
    with resolve_split("gsm8k", "train").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            row = json.loads(line)
            rationale, raw = split_rationale(row["answer"])
            out.append(Example(f"q{i:03d}", row["question"], rationale, normalize_answer(raw)))
    return out


def sample(args, examples: list) -> list[dict]:
    """One explanation per question from the student (or from --samples when it exists)."""
    path = Path(args.samples) if args.samples else None
    if path is not None and path.exists():
        rows = json.loads(path.read_text(encoding="utf-8"))
        by_id = {r["id"]: r for r in rows}
        if all(e.id in by_id for e in examples):
            return [by_id[e.id] for e in examples]
        print(f"{path} lacks some questions; sampling again", file=sys.stderr)
    import torch

    from elad_core.explanations.prompt import chat_prompt_template
    from elad_core.student.catalog import resolve_student
    from elad_core.student.model import load_student
    from elad_core.student.sampling import sample_explanations

    torch.set_num_threads(args.threads)
    model, tok = load_student(resolve_student(args.model).path, device=args.device)
    kwargs = {}
    if args.format == "chat":
        kwargs["template"] = chat_prompt_template(tok)
    t0 = time.perf_counter()
    samples = sample_explanations(model, tok, [e.id for e in examples],
                                  [e.question for e in examples], k=1,
                                  temperature=args.temperature,
                                  max_new_tokens=args.max_new_tokens, batch_size=16,
                                  seed=args.seed, **kwargs)
    print(f"sampled {len(samples)} explanations in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    rows = [{"id": s.question_id, "text": s.text, "answer": s.answer} for s in samples]
    if path is not None:
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return rows


def annotate(client, annotator: str, requests: list, family: str = "number") -> list:
    from elad_core.elad.annotators import annotate_batch

    kwargs = {}
    if "answer_turn" in inspect.signature(annotate_batch).parameters:
        kwargs["answer_turn"] = False  # the oracle always writes its answer
    return annotate_batch(client, annotator, requests, family, 16, **kwargs)


def per_question(anns: list) -> dict:
    n = len(anns)
    return {
        "questions": n,
        "prompt_tokens": sum(a.prompt_tokens for a in anns) / n,
        "completion_tokens": sum(a.completion_tokens for a in anns) / n,
        "teacher_tokens": sum(a.prompt_tokens + a.completion_tokens for a in anns) / n,
        "requests": sum(a.n_requests for a in anns) / n,
        "max_requests": max(a.n_requests for a in anns),
        "max_teacher_tokens": max(a.prompt_tokens + a.completion_tokens for a in anns),
        "cost_usd": sum(a.cost_usd for a in anns) / n,
        "ok": sum(a.status == "ok" for a in anns),
        "accepted_steps": (sum(a.accepted_steps or 0 for a in anns) / n),
    }


def _record(annotator: str, anns: list) -> dict:
    """A round record (manifest) of these annotations, as the budget reads it."""
    return {"annotator": annotator, "selected": len(anns), "annotated": len(anns),
            "teacher_tokens": sum(a.prompt_tokens + a.completion_tokens for a in anns),
            "cost_usd": sum(a.cost_usd for a in anns)}


def estimates(examples: list, results: dict) -> dict:
    """Budget estimates against spend, per annotator: a priori (no round measured; and, for
    clear / clear_single, after a measured cot round where the Estimator uses one) and
    measured (the first half of the questions as an earlier round of the same annotator)."""
    from elad_core.elad.cost import estimator_for
    from elad_core.teacher.config import TeacherConfig

    cfg = TeacherConfig()
    questions = [e.question for e in examples]
    # the product's default: teacher.completion_tokens_estimate (256) per call
    default = estimator_for(cfg, questions)
    est = default
    if "solutions" in inspect.signature(estimator_for).parameters:  # the oracle's own length
        est = estimator_for(cfg, questions,
                            solutions=[f"{e.rationale}\n#### {e.answer}" for e in examples])
    half = len(examples) // 2
    out = {}
    for name, anns in results.items():
        spent = sum(a.prompt_tokens + a.completion_tokens for a in anns)
        prior = est.per_annotation(name, [])[0].teacher_tokens * len(anns)
        plain = default.per_annotation(name, [])[0].teacher_tokens * len(anns)
        row = {"spent": spent, "a_priori": prior, "a_priori_ratio": prior / spent,
               "a_priori_256": plain, "a_priori_256_ratio": plain / spent}
        if name != "cot" and "cot" in results:
            per, basis = est.per_annotation(name, [_record("cot", results["cot"])])
            row.update(after_cot=per.teacher_tokens * len(anns),
                       after_cot_ratio=per.teacher_tokens * len(anns) / spent,
                       after_cot_basis=basis)
        first, second = anns[:half], anns[half:]
        per, _ = est.per_annotation(name, [_record(name, first)])
        later = sum(a.prompt_tokens + a.completion_tokens for a in second)
        row.update(measured=per.teacher_tokens * len(second), measured_spent=later,
                   measured_ratio=per.teacher_tokens * len(second) / later)
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m",
                    help="the student (student.model): a packaged short name, a .gguf file, a "
                         "transformers folder or hub id; default SmolLM2-135M-Instruct "
                         "(`make install-real`)")
    ap.add_argument("--n", type=int, default=32, help="GSM8K questions (train split, first n)")
    ap.add_argument("--format", choices=("plain", "chat"), default="plain",
                    help="student prompt: `Question: ...\\nAnswer:` or its chat template")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", help="JSON file of sampled explanations: read if it exists, "
                    "else written")
    ap.add_argument("--annotators", nargs="+", default=list(ANNOTATORS), choices=ANNOTATORS)
    ap.add_argument("--tag", default="after", help="name of this measurement in the results")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    from elad_core.elad.annotators import AnnotationRequest
    from elad_core.teacher.client import TeacherClient
    from elad_core.elad.oracle_judge import OracleJudge
    from elad_core.teacher.oracle.server import OracleServer

    examples = gsm8k_examples(args.n)
    samples = sample(args, examples)
    requests = [AnnotationRequest(e.id, e.question, s["text"], 0, s.get("answer"))
                for e, s in zip(examples, samples, strict=True)]
    results = {}
    with OracleServer(OracleJudge(examples)) as server:
        for name in args.annotators:
            client = TeacherClient("openai/oracle", api_base=server.api_base)
            results[name] = annotate(client, name, requests)
    rows = {name: per_question(anns) for name, anns in results.items()}
    if "cot" in rows:
        cot_targets = [a.target for a in results["cot"]]
        for name, row in rows.items():
            row["vs_cot"] = row["teacher_tokens"] / rows["cot"]["teacher_tokens"]
            # what the extra tokens buy: targets that differ from the CoT target (under the
            # oracle, an accepted step that reproduces a gold line becomes that line, so a
            # revision differs only where the student's own wording survives)
            row["targets_unlike_cot"] = sum(a.status == "ok" and a.target != t
                                            for a, t in zip(results[name], cot_targets))
    est = estimates(examples, results)

    print(f"{args.tag}: {args.n} GSM8K questions, student {args.model} ({args.format} prompt), "
          "oracle teacher; per question:")
    print(f"{'annotator':<13}{'prompt':>7}{'compl.':>7}{'total':>7}{'x cot':>6}{'req.':>6}"
          f"{'max req':>8}{'ok':>4}  estimate/spent: {'a priori':>8}{'(256)':>7}{'after cot':>10}"
          f"{'measured':>9}")
    for name, r in rows.items():
        e = est[name]
        print(f"{name:<13}{r['prompt_tokens']:>7.0f}{r['completion_tokens']:>7.0f}"
              f"{r['teacher_tokens']:>7.0f}{r.get('vs_cot', float('nan')):>6.2f}"
              f"{r['requests']:>6.2f}{r['max_requests']:>8d}{r['ok']:>4d}  {'':>16}"
              f"{e['a_priori_ratio']:>8.2f}{e['a_priori_256_ratio']:>7.2f}"
              f"{e.get('after_cot_ratio', float('nan')):>10.2f}{e['measured_ratio']:>9.2f}")
    for name, r in rows.items():
        if name != "cot" and "targets_unlike_cot" in r:
            print(f"{name}: {r['accepted_steps']:.2f} student steps accepted per question; "
                  f"{r['targets_unlike_cot']} of {r['questions']} targets differ from cot's")
    print("a priori: with the oracle's completion length (its gold solutions) where the budget "
          "knows it; (256): teacher.completion_tokens_estimate; after cot: clear / clear_single "
          "estimated after a measured cot round; measured: the first half of the questions as an "
          "earlier round, predicting the second half")

    out = Path(args.out)
    doc = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    doc[args.tag] = {
        "student": args.model, "format": args.format, "questions": args.n,
        "temperature": args.temperature, "max_new_tokens": args.max_new_tokens,
        "seed": args.seed, "teacher": "oracle (gpt-3.5-turbo tokenizer)",
        "per_question": rows, "estimates": est,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc[args.tag]


if __name__ == "__main__":
    main()
