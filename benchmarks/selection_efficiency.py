"""Selection efficiency: student accuracy against teacher tokens, per selector × annotator.

Issue 3 / docs/design.md §4-§5. On the seeded arithmetic word-problem task (a measuring instrument,
`elad_core/synthetic/arithmetic.py`; a tiny student trained from scratch cannot learn GSM8K on CPU),
every method starts from the SAME warm-started student — trained once, from scratch, on a random
seed set annotated by the teacher with CoT, cached under the output folder and shared by all
methods and seeds — then runs the same round schedule:

  each round: a seeded random candidate subset of the questions not yet annotated (the same
  candidates for every method in round 1) → K sampled explanations per candidate (and EGSS
  probes) → the selector ranks the candidates → the teacher annotates them in rank order, in
  batches, until the round's teacher-token budget is spent (the last batch may overshoot; the
  exact tokens are recorded) → the student continues training on everything annotated so far
  (seed set included) → greedy accuracy on a held-out test split.

The round budget is in teacher TOKENS, not questions: annotators that cost more per question
(CLEAR's multi-turn dialogue) get fewer questions, so methods are compared at equal teacher
tokens. The teacher is the ORACLE (a test double answering from gold, docs/design.md §2.4), reached
through litellm exactly like a real one; its token counts are litellm's offline tokenizer's.

The code path is the one the flow's tasks call (elad_core: sample_explanations, probe_answers,
selectors, annotate_batch, train_student, evaluate); only the Prefect wiring is left out, so a
method × seed × round is cached here as a folder with result.json (a killed benchmark resumes).

Also measured: the full-pool ceiling, the same student trained from scratch on the whole pool's
gold solutions (what the oracle's CoT returns) for --ceiling-steps.

    .venv/bin/python benchmarks/selection_efficiency.py            # minimum grid, 3 seeds
    .venv/bin/python benchmarks/selection_efficiency.py --grid full  # 6 selectors × {cot, clear}
    .venv/bin/python benchmarks/selection_efficiency.py --quick      # a 2-minute smoke run

Writes OUT/selection_efficiency.json, OUT/selection_efficiency.png, OUT/selection_efficiency.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path

for _k, _v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elad_core.elad import rounds  # noqa: E402
from elad_core.elad.annotators import annotate_batch  # noqa: E402
from elad_core.elad.data import load_examples  # noqa: E402
from elad_core.elad.prompts import FORMAT_TEXTS, student_target  # noqa: E402
from elad_core.elad.records import Annotation, Example  # noqa: E402
from elad_core.elad.selectors import SELECTORS, make_selector, select_top  # noqa: E402
from elad_core.files import hash_json, write_json  # noqa: E402
from elad_core.student import (  # noqa: E402
    build_embedded_student,
    load_student,
    probe_answers,
    sample_explanations,
    train_student,
)
from elad_core.student.config import EmbeddedStudentConfig, TrainConfig  # noqa: E402
from elad_core.student.evaluation import evaluate  # noqa: E402
from elad_core.synthetic.arithmetic import write_dataset  # noqa: E402
from elad_core.teacher.client import ORACLE_SIMULATED_PRICES, TeacherClient  # noqa: E402
from elad_core.teacher.oracle.judge import OracleJudge  # noqa: E402
from elad_core.teacher.oracle.server import OracleServer  # noqa: E402

log = logging.getLogger("selection_efficiency")

MINIMUM_GRID = [(s, a) for s in ("egss", "disagreement", "random") for a in ("cot", "clear")] + [
    ("egss", "clear_single")]
FULL_GRID = [(s, a) for s in SELECTORS for a in ("cot", "clear")] + [("egss", "clear_single")]

# docs/design.md §5: d 256, 4 layers, 4 heads (~3.3 M parameters), AdamW 2e-3, warm-up 50, cosine to 0.1×,
# batch 32, bf16 autocast. Nothing here was tuned on the benchmark's results.
STUDENT = EmbeddedStudentConfig(vocab_size=640, hidden_size=256, num_layers=4, num_heads=4,
                                intermediate_size=688, max_position_embeddings=512)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/selection_efficiency"))
    p.add_argument("--grid", choices=["minimum", "full"], default="minimum")
    p.add_argument("--methods", default=None, help="comma list selector:annotator (overrides --grid)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pool", type=int, default=4000, help="pool questions (unlabelled)")
    p.add_argument("--test", type=int, default=300, help="held-out test questions")
    p.add_argument("--warm", type=int, default=500, help="random seed set of the warm start")
    p.add_argument("--warm-steps", type=int, default=1200)
    p.add_argument("--ceiling-steps", type=int, default=1200)
    p.add_argument("--rounds", type=int, default=2, help="active rounds after the warm start")
    p.add_argument("--candidates", type=int, default=800, help="pool questions scored per round")
    p.add_argument("--round-tokens", type=int, default=40_000, help="teacher tokens per round")
    p.add_argument("--round-steps", type=int, default=150, help="training steps per round")
    p.add_argument("--batch", type=int, default=25, help="teacher batch (questions)")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--egss-lambda", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 is faster on a loaded machine)")
    p.add_argument("--only-ceiling", action="store_true",
                   help="train and evaluate the full-pool ceiling only (can run beside the grid)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script end to end")
    a = p.parse_args(argv)
    if a.quick:
        a.out = a.out.with_name(a.out.name + "_quick")
        a.pool, a.test, a.warm, a.warm_steps, a.ceiling_steps = 300, 40, 60, 30, 20
        a.rounds, a.candidates, a.round_tokens, a.round_steps, a.seeds = 2, 60, 3000, 10, 2
    grid = MINIMUM_GRID if a.grid == "minimum" else FULL_GRID
    a.method_list = [tuple(m.split(":")) for m in a.methods.split(",")] if a.methods else grid
    for sel, ann in a.method_list:
        if sel not in SELECTORS or ann not in ("cot", "clear", "clear_single"):
            p.error(f"--methods: unknown selector:annotator {sel}:{ann}")
    return a


class Bench:
    """Shared state: data, the oracle teacher, the student base and the cache folder."""

    def __init__(self, args: argparse.Namespace, api_base: str, pool: list[Example],
                 test: list[Example], base: Path):
        self.a, self.api_base, self.pool, self.test, self.base = args, api_base, pool, test, base
        self.by_id = {e.id: e for e in pool}
        self.train_cfg = dict(batch_size=32, lr=2e-3, warmup_steps=50, min_lr_ratio=0.1,
                              max_length=256, bf16=True)

    def client(self) -> TeacherClient:
        return TeacherClient("openai/oracle", api_base=self.api_base, max_concurrency=32,
                             input_cost_per_1m_usd=ORACLE_SIMULATED_PRICES[0],
                             output_cost_per_1m_usd=ORACLE_SIMULATED_PRICES[1])

    def train(self, init: Path | None, annotations: list[Annotation], steps: int, out: Path,
              seed: int) -> dict:
        pairs, _ = rounds.training_pairs(annotations, {e.id: e.question for e in self.pool})
        cfg = TrainConfig(steps=steps, warmup_steps=min(50, steps // 4), **{
            k: v for k, v in self.train_cfg.items() if k != "warmup_steps"})
        res = train_student(str(self.base), init, pairs, cfg, "full", out, seed, progress=True)
        return {"train_loss": sum(res.losses[-10:]) / len(res.losses[-10:]),
                "train_s": res.wall_s, "n_train": res.n_examples}

    def evaluate(self, weights: Path) -> float:
        model, tok = load_student(str(self.base), weights)
        return evaluate(model, tok, self.test, self.a.max_new_tokens, 64, progress=True).accuracy


def _cached(folder: Path, key: dict, compute) -> dict:
    """folder/result.json when its key matches, else compute() written there (resumable)."""
    path = folder / "result.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved
    folder.mkdir(parents=True, exist_ok=True)
    out = {"key": key, **compute()}
    write_json(path, out)
    return out


def _save_annotations(path: Path, anns: list[Annotation]) -> None:
    write_json(path, [a.__dict__ for a in anns])


def _load_annotations(path: Path) -> list[Annotation]:
    return [Annotation(**row) for row in json.loads(path.read_text())]


def warm_start(b: Bench) -> dict:
    """The shared warm start: `--warm` random pool questions, CoT by the teacher, from scratch."""
    a = b.a
    folder = a.out / "warm"
    key = {"n": a.warm, "steps": a.warm_steps, "train": b.train_cfg, "pool": len(b.pool)}

    def compute() -> dict:
        ids = random.Random(0).sample([e.id for e in b.pool], a.warm)
        reqs = rounds.annotation_requests(ids, {i: b.by_id[i].question for i in ids}, None)
        anns = annotate_batch(b.client(), "cot", reqs)
        _save_annotations(folder / "annotations.json", anns)
        tr = b.train(None, anns, a.warm_steps, folder / "model", seed=0)
        return {"annotated": ids, "teacher_tokens": sum(x.teacher_tokens for x in anns), **tr,
                "accuracy": b.evaluate(folder / "model")}

    return _cached(folder, key, compute)


def ceiling(b: Bench) -> dict:
    """Full-pool ceiling: the whole pool's gold solutions, trained from scratch."""
    a = b.a
    folder = a.out / "ceiling"
    key = {"steps": a.ceiling_steps, "train": b.train_cfg, "pool": len(b.pool)}

    def compute() -> dict:
        anns = [Annotation(e.id, "gold", "ok", student_target(e.rationale, e.answer), e.answer,
                           None, None, "", "", 0, 0, 0.0, 0) for e in b.pool]
        tr = b.train(None, anns, a.ceiling_steps, folder / "model", seed=0)
        return {**tr, "accuracy": b.evaluate(folder / "model")}

    return _cached(folder, key, compute)


def _sampled(b: Bench, weights: Path, candidates: list[str], seed: int, need_probes: bool,
             folder: Path) -> tuple[list, list | None]:
    """Samples (and probes) of `candidates`, cached per (weights, candidates, seed)."""
    key = hash_json([str(weights), candidates, seed, b.a.k, b.a.temperature, need_probes])[:16]
    path = folder / f"samples_{key}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        from elad_core.elad.records import Probe, Sample
        return ([Sample(**r) for r in saved["samples"]],
                [Probe(**r) for r in saved["probes"]] if saved["probes"] is not None else None)
    model, tok = load_student(str(b.base), weights)
    t0 = time.perf_counter()
    samples = sample_explanations(model, tok, candidates, [b.by_id[q].question for q in candidates],
                                  k=b.a.k, temperature=b.a.temperature,
                                  max_new_tokens=b.a.max_new_tokens, batch_size=64, seed=seed,
                                  progress=True)
    probes = None
    if need_probes:
        from elad_core.elad.records import Probe
        plan = rounds.probe_plan(samples, {q: b.by_id[q].question for q in candidates}, 12)
        answers = probe_answers(model, tok, [p.prompt for p in plan], 8, 128, progress=True)
        probes = [Probe(p.question_id, p.sample_index, p.prefix_steps, x)
                  for p, x in zip(plan, answers, strict=True)]
    log.info("sampled %d candidates in %.0f s", len(candidates), time.perf_counter() - t0)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, {"samples": [s.__dict__ for s in samples],
                      "probes": None if probes is None else [p.__dict__ for p in probes]})
    return samples, probes


def run_method(b: Bench, warm: dict, selector: str, annotator: str, seed: int) -> list[dict]:
    """Rounds 1..R of one method and seed; returns one record per round (round 0 = warm start)."""
    a = b.a
    annotated = list(warm["annotated"])
    annotations = _load_annotations(a.out / "warm" / "annotations.json")
    weights, tokens = a.out / "warm" / "model", 0
    curve = [{"round": 0, "teacher_tokens": 0, "annotated": len(annotated),
              "accuracy": warm["accuracy"]}]
    for r in range(1, a.rounds + 1):
        folder = a.out / "runs" / f"{selector}-{annotator}" / f"seed{seed}" / f"round{r}"
        key = {"selector": selector, "annotator": annotator, "seed": seed, "round": r,
               "weights": str(weights), "annotated": hash_json(sorted(annotated)),
               "round_tokens": a.round_tokens, "steps": a.round_steps, "candidates": a.candidates,
               "k": a.k, "temperature": a.temperature, "lambda": a.egss_lambda}

        def compute(r=r, weights=weights, annotated=annotated, annotations=annotations, folder=folder):
            t0 = time.perf_counter()
            done = set(annotated)
            remaining = sorted(e.id for e in b.pool if e.id not in done)
            candidates = random.Random(seed * 1000 + r).sample(remaining, min(a.candidates, len(remaining)))
            sel = make_selector(selector, a.egss_lambda)
            needs_samples = selector != "random" or annotator != "cot"
            samples = probes = None
            if needs_samples:  # round 1 candidates/weights are shared: the cache serves the rest
                samples, probes = _sampled(b, weights, candidates, seed * 7919 + r, sel.needs_probes,
                                           a.out / "samples")
                ids = list(rounds.group_samples(samples))
                inputs = rounds.selector_input(ids, samples, probes, seed + r)
            else:
                ids = candidates
                from elad_core.elad.selectors import SelectorInput
                inputs = SelectorInput([[None]] * len(ids), seed=seed + r)
            ranked = select_top(ids, sel.score(inputs), done, len(ids))
            reqs = rounds.annotation_requests(ranked, {q: b.by_id[q].question for q in ranked},
                                              samples if annotator != "cot" else None)
            new, spent = [], 0
            client = b.client()
            for i in range(0, len(reqs), a.batch):  # rank order until the token budget is spent
                if spent >= a.round_tokens:
                    break
                got = annotate_batch(client, annotator, reqs[i:i + a.batch])
                new += got
                spent += sum(x.teacher_tokens for x in got)
            _save_annotations(folder / "annotations.json", new)
            tr = b.train(weights, annotations + new, a.round_steps, folder / "model", seed=seed * 31 + r)
            acc = b.evaluate(folder / "model")
            return {"new_ids": [x.question_id for x in new], "teacher_tokens_round": spent,
                    "annotations_ok": sum(x.status == "ok" for x in new),
                    "accepted_steps_mean": statistics.fmean(
                        [x.accepted_steps or 0 for x in new]) if annotator != "cot" and new else None,
                    "accuracy": acc, **tr, "wall_s": time.perf_counter() - t0}

        res = _cached(folder, key, compute)
        annotations = annotations + _load_annotations(folder / "annotations.json")
        annotated = annotated + res["new_ids"]
        weights, tokens = folder / "model", tokens + res["teacher_tokens_round"]
        curve.append({"round": r, "teacher_tokens": tokens, "annotated": len(annotated),
                      "accuracy": res["accuracy"], "questions": len(res["new_ids"]),
                      "round_tokens": res["teacher_tokens_round"],
                      "gold_steps_mean": _gold_steps(b, res["new_ids"]),
                      "accepted_steps_mean": res["accepted_steps_mean"],
                      "train_loss": res["train_loss"], "wall_s": res["wall_s"]})
        log.info("%s+%s seed %d round %d: %d questions, %d tokens, accuracy %.3f", selector,
                 annotator, seed, r, len(res["new_ids"]), res["teacher_tokens_round"], res["accuracy"])
    return curve


def _gold_steps(b: Bench, ids: list[str]) -> float | None:
    """Mean number of gold solution steps of `ids` (what a selector picked: hard or easy)."""
    return statistics.fmean(len(b.by_id[q].rationale.splitlines()) for q in ids) if ids else None


def analyse_round1(b: Bench, warm: dict, seeds: int, top: int) -> str:
    """Why a selector wins or not: round 1 of every seed (all methods share the warm-start
    student and the candidates there), from the cached samples and probes.

    For each selector: Spearman correlation over the candidates of its score with the share
    of the student's K answers that are right and with the gold solution's step count; and
    over its `top` picks, that share, the step count and the share of picks with no right
    answer among the K. Markdown, one row per selector (mean over seeds).
    """
    from scipy.stats import spearmanr

    a, rows = b.a, {s: [] for s in SELECTORS}
    for seed in range(seeds):
        done = set(warm["annotated"])
        remaining = sorted(e.id for e in b.pool if e.id not in done)
        candidates = random.Random(seed * 1000 + 1).sample(remaining, min(a.candidates, len(remaining)))
        samples, probes = _sampled(b, a.out / "warm" / "model", candidates, seed * 7919 + 1, True,
                                   a.out / "samples")
        by_q = rounds.group_samples(samples)
        ids = list(by_q)
        right = [statistics.fmean(x.answer == b.by_id[q].answer for x in by_q[q]) for q in ids]
        steps = [len(b.by_id[q].rationale.splitlines()) for q in ids]
        inputs = rounds.selector_input(ids, samples, probes, seed + 1)
        for sel in SELECTORS:
            scores = make_selector(sel, a.egss_lambda).score(inputs)
            picked = [ids.index(q) for q in select_top(ids, scores, set(), top)]
            rows[sel].append((
                spearmanr(scores, right).statistic, spearmanr(scores, steps).statistic,
                statistics.fmean(right[i] for i in picked), statistics.fmean(steps[i] for i in picked),
                statistics.fmean(right[i] == 0 for i in picked)))
        rows.setdefault("(all candidates)", []).append(
            (float("nan"), float("nan"), statistics.fmean(right), statistics.fmean(steps),
             statistics.fmean(x == 0 for x in right)))
    lines = [f"Round 1 (warm-start student, {a.candidates} candidates, K = {a.k}, τ = "
             f"{a.temperature}; mean over {seeds} seeds): what each selector ranks high. ρ = "
             f"Spearman correlation over the candidates; the last three columns are over its top "
             f"{top} (CoT's round-1 purchase).", "",
             "| selector | ρ(score, share of K right) | ρ(score, gold steps) | share of K right, top | "
             "gold steps, top | no right answer, top |", "|---|---|---|---|---|---|"]
    for sel, rs in rows.items():
        m = [statistics.fmean(col) for col in zip(*rs, strict=True)]
        lines.append(f"| {sel} | {m[0]:+.2f} | {m[1]:+.2f} | {m[2]:.3f} | {m[3]:.2f} | {m[4]:.2f} |"
                     .replace("+nan", "–"))
    return "\n".join(lines) + "\n"


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarise(results: dict, a: argparse.Namespace) -> str:
    """Markdown: final accuracy (mean ± std over seeds) and tokens, docs/design.md §4's shape."""
    def cell(sel: str, ann: str) -> str:
        runs = results["methods"].get(f"{sel}:{ann}")
        if not runs:
            return "–"
        acc = _mean_std([100 * c[-1]["accuracy"] for c in runs.values()])
        tok = _mean_std([c[-1]["teacher_tokens"] / 1000 for c in runs.values()])
        return f"{acc[0]:.1f} ± {acc[1]:.1f} ({tok[0]:.1f}k tok)"

    sels = [s for s in SELECTORS if any(k.startswith(s + ":") for k in results["methods"])]
    lines = [
        f"Accuracy % after {a.rounds} active rounds on the arithmetic task (mean ± std over "
        f"{a.seeds} seeds; in brackets: teacher tokens spent in the active rounds). Teacher: the "
        "oracle test double. Warm start "
        f"{100 * results['warm']['accuracy']:.1f}% ({a.warm} CoT examples); full-pool ceiling "
        f"{100 * results['ceiling']['accuracy']:.1f}% ({a.pool} examples).", "",
        "| selector | CoT | CLEAR | clear_single |", "|---|---|---|---|"]
    for s in sels:
        lines.append(f"| {s} | {cell(s, 'cot')} | {cell(s, 'clear')} | {cell(s, 'clear_single')} |")
    lines += ["", "Per round (mean over seeds): round: accuracy % @ cumulative teacher tokens", ""]
    for m, runs in results["methods"].items():
        pts = []
        for r in range(a.rounds + 1):
            acc = statistics.fmean(100 * c[r]["accuracy"] for c in runs.values())
            tok = statistics.fmean(c[r]["teacher_tokens"] for c in runs.values())
            q = statistics.fmean(c[r].get("questions", 0) for c in runs.values())
            pts.append(f"r{r}: {acc:.1f}% @ {tok / 1000:.1f}k" + (f" ({q:.0f} q)" if r else ""))
        lines.append(f"* {m}: " + ", ".join(pts))
    lines += ["", "What each method bought in the active rounds (mean over seeds and rounds): questions "
              "annotated, teacher tokens per question, gold solution steps of the selected questions "
              f"(pool mean {results.get('pool_gold_steps_mean', float('nan')):.2f}), and for CLEAR the "
              "student steps the teacher accepted per question.", "",
              "| method | questions | tokens / question | gold steps of selected | accepted steps |",
              "|---|---|---|---|---|"]
    for m, runs in results["methods"].items():
        rs = [c[r] for c in runs.values() for r in range(1, a.rounds + 1)]
        q = sum(x["questions"] for x in rs) / len(runs)
        tpq = sum(x["round_tokens"] for x in rs) / max(1, sum(x["questions"] for x in rs))
        steps = statistics.fmean(x["gold_steps_mean"] for x in rs if x["gold_steps_mean"] is not None)
        acc = [x["accepted_steps_mean"] for x in rs if x.get("accepted_steps_mean") is not None]
        lines.append(f"| {m} | {q:.0f} | {tpq:.0f} | {steps:.2f} | "
                     f"{statistics.fmean(acc):.2f} |" if acc else f"| {m} | {q:.0f} | {tpq:.0f} | "
                     f"{steps:.2f} | – |")
    return "\n".join(lines) + "\n"


def plot(results: dict, a: argparse.Namespace, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m, runs in results["methods"].items():
        xs = [statistics.fmean(c[r]["teacher_tokens"] for c in runs.values()) / 1000
              for r in range(a.rounds + 1)]
        ys = [[100 * c[r]["accuracy"] for c in runs.values()] for r in range(a.rounds + 1)]
        mean = [statistics.fmean(y) for y in ys]
        std = [statistics.stdev(y) if len(y) > 1 else 0 for y in ys]
        style = "-" if m.endswith(":clear") else ("--" if m.endswith(":cot") else ":")
        ax.errorbar(xs, mean, yerr=std, label=m.replace(":", " + "), linestyle=style, marker="o",
                    capsize=3)
    ax.axhline(100 * results["ceiling"]["accuracy"], color="gray", linestyle="-.",
               label=f"full pool ({a.pool} gold examples)")
    ax.set_xlabel("teacher tokens spent in active rounds (thousands; oracle test double)")
    ax.set_ylabel("test accuracy %")
    ax.set_title(f"Arithmetic task, {a.seeds} seeds, warm start {a.warm} CoT examples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "LiteLLM", "litellm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    a = parse_args(argv)
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = write_dataset(a.out / "data", {"pool": a.pool, "test": a.test}, seed=1234)
    pool, test = load_examples(str(paths["pool"]), "pool"), load_examples(str(paths["test"]), "test")
    base = a.out / "student_base"
    if not (base / "embedded_student.json").exists():
        texts = [e.question for e in pool] + FORMAT_TEXTS
        build_embedded_student(texts, STUDENT, base, seed=0)
    with OracleServer(OracleJudge(pool + test)) as server:
        b = Bench(a, server.api_base, pool, test, base)
        if a.only_ceiling:
            print(json.dumps({k: v for k, v in ceiling(b).items() if k != "key"}))
            return 0
        warm = warm_start(b)
        log.info("warm start: accuracy %.3f", warm["accuracy"])
        results = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
                   "warm": {k: v for k, v in warm.items() if k != "annotated"}, "methods": {},
                   "pool_gold_steps_mean": _gold_steps(b, [e.id for e in pool])}
        for seed in range(a.seeds):  # seed by seed: partial results are usable early
            for sel, ann in a.method_list:
                curve = run_method(b, warm, sel, ann, seed)
                results["methods"].setdefault(f"{sel}:{ann}", {})[str(seed)] = curve
                write_json(a.out / "selection_efficiency.partial.json", results)
            if seed == 0:
                results["ceiling"] = ceiling(b)
                log.info("full-pool ceiling: accuracy %.3f", results["ceiling"]["accuracy"])
        top = max(c[1]["questions"] for runs in results["methods"].values() for c in runs.values())
        analysis = analyse_round1(b, warm, a.seeds, top)
    results["wall_s"] = time.perf_counter() - t0
    write_json(a.out / "selection_efficiency.json", results)
    table = summarise(results, a) + "\n" + analysis
    (a.out / "selection_efficiency.md").write_text(table, encoding="utf-8")
    plot(results, a, a.out / "selection_efficiency.png")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
