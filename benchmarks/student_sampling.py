"""Sampling speed of a real student on this machine: explanations/s and new tokens/s (issue #21.4).

Times the product's own `elad_core.student.sampling.sample_explanations` (K explanations per
GSM8K test question, temperature 0.7, the student's chat template when it has one) on a real
pretrained student (default: SmolLM2-135M-Instruct converted to a transformers folder, see
`--model`) for these variants, all in one process and one run so they see the same machine:

  baseline        today's defaults before issue #21.4: generate() with a fresh StaticCache per
                  call, fp32 weights, torch.multinomial, log-probs from stored logits, batch 64
  default         the product's defaults now (decode_loop.py `decode_loop`, sample_dtype auto)
  ...             one change at a time against `default` (or `baseline`): batch size
                  16/32/64/128, bf16 vs fp32 weights (bf16 only where the CPU computes it
                  natively, precision.native_bf16), cache (generate(): static vs dynamic;
                  loop: its slab cache), torch threads 1 vs 2, torch.compile, SDPA vs eager
                  attention, and the loop's parts (shared prefill, dropping finished rows,
                  inverse-CDF sampling)

Variants run interleaved (round robin, `--repeats` rounds) so drifting load hits them alike;
the table shows medians. Each timed call samples the same questions with the same seed.
Also measured once: EGSS probes (`probe_answers`) of the default's samples, and the machine's
memory bandwidth and matmul GFLOP/s, from which the decode's memory- and compute-bound limits
are computed (`roofline`). Writes JSON with the CPU flags, load averages and versions.

    .venv/bin/python benchmarks/student_sampling.py            # SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/student_sampling.py --quick   # a few questions, short decodes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchmarks._common  # noqa: E402,F401  (offline environment, checkout on sys.path)

import torch  # noqa: E402

from elad_core.explanations.prompt import chat_prompt_template  # noqa: E402
from elad_core.student import decode_common, sampling  # noqa: E402
from elad_core.student.catalog import resolve_student  # noqa: E402
from elad_core.student.model import load_causal_lm, load_tokenizer  # noqa: E402
from elad_core.student.precision import native_bf16  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GSM8K_TEST = ROOT / "elad_core" / "data" / "gsm8k" / "test.jsonl"
DEFAULT_MODEL = "smollm2-135m"  # SmolLM2-135M-Instruct (`make install-real`), via resolve_student
OLD = dict(engine="generate", generate_cache="static", share_prefill=False, compact=False,
           sampler="multinomial")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    what: str  # one line: what differs
    options: dict = dataclasses.field(default_factory=dict)  # decode_common.DecodeOptions fields
    dtype: str = "auto"  # sample_explanations(dtype=...)
    batch: int = 64
    threads: int | None = None  # None: --threads
    model: str = "fp32"  # which loaded model: fp32 | bf16 (loaded in bf16) | eager | compiled
    max_rounds: int | None = None  # run in the first rounds only (compile: cold + warm)


def variants(bf16_native: bool, threads: int) -> list[Variant]:
    v = [
        Variant("baseline", "before: generate(), StaticCache, fp32, multinomial, batch 64",
                OLD, dtype="fp32"),
        Variant("default", "now: decode loop, sample_dtype auto, batch 64"),
        Variant("gen-dynamic", "baseline with generate()'s DynamicCache", {**OLD, "generate_cache": "dynamic"},
                dtype="fp32"),
        Variant("loop-fp32", "default with fp32 weights", dtype="fp32"),
        Variant("no-share-prefill", "default, prefill each of the K copies", {"share_prefill": False}),
        Variant("no-compact", "default, finished rows stay in the batch", {"compact": False}),
        Variant("multinomial", "default with torch.multinomial", {"sampler": "multinomial"}),
        Variant("no-shared-attn", "default, SDPA over each row's full cache (no shared prefix)",
                {"shared_attention": False}),
        Variant("batch16", "default, generate_batch_size 16", batch=16),
        Variant("batch32", "default, generate_batch_size 32", batch=32),
        Variant("batch128", "default, generate_batch_size 128", batch=128),
        Variant("eager", "default with eager attention", model="eager"),
        Variant("compile", "default, model.forward = torch.compile(dynamic=True); round 1 "
                "compiles, round 2 is warm", model="compiled", max_rounds=2),
    ]
    if bf16_native:
        v.append(Variant("bf16-loaded", "default, model loaded in bf16 (no per-call cast)",
                         model="bf16"))
    if threads != 1:
        v.append(Variant("threads1", "default with 1 torch thread", threads=1))
        v.append(Variant("baseline-threads1", "baseline with 1 torch thread", OLD, dtype="fp32",
                         threads=1))
    return v


def questions(n: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in GSM8K_TEST.read_text(encoding="utf-8").splitlines()[:n]]
    return [f"test-{i}" for i in range(len(rows))], [r["question"] for r in rows]


def cpu_info() -> dict:
    flags: list[str] = []
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    keep = [f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4"))]
    return {"model": name, "cores": os.cpu_count(), "simd_flags": keep,
            "native_bf16": native_bf16("cpu"), "all_flags": flags}


class Models:
    """The loaded models, made once each on first use."""

    def __init__(self, path: str):
        self.path, self.cache = path, {}

    def get(self, kind: str) -> Any:
        if kind not in self.cache:
            if kind == "fp32":
                m = load_causal_lm(self.path)
            elif kind == "bf16":
                m = load_causal_lm(self.path, dtype=torch.bfloat16)
            elif kind == "eager":
                m = load_causal_lm(self.path, attn_implementation="eager")
            elif kind == "compiled":  # decode dtype as `auto` gives, so no per-call cast
                m = load_causal_lm(self.path, dtype=sampling.decode_dtype(self.get("fp32")))
                m.forward = torch.compile(m.forward, dynamic=True)
            else:
                raise ValueError(kind)
            self.cache[kind] = m.eval()
        return self.cache[kind]


def run_variant(v: Variant, models: Models, tok: Any, ids: list[str], qs: list[str], args,
                template: str | None) -> dict:
    torch.set_num_threads(v.threads or args.threads)
    decode_common.OPTIONS = dataclasses.replace(decode_common.DecodeOptions(), **v.options)
    load0 = os.getloadavg()[0]
    try:
        model = models.get(v.model)
        t0, c0 = time.perf_counter(), time.process_time()
        samples = sampling.sample_explanations(
            model, tok, ids, qs, k=args.k, temperature=0.7, max_new_tokens=args.max_new_tokens,
            batch_size=v.batch, seed=0, template=template, dtype=v.dtype)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    finally:
        decode_common.OPTIONS = decode_common.DecodeOptions()
        torch.set_num_threads(args.threads)
    tokens = sum(s.n_new_tokens for s in samples)
    return {"wall_s": wall, "cpu_s": cpu, "explanations": len(samples), "new_tokens": tokens,
            "explanations_per_s": len(samples) / wall, "tokens_per_s": tokens / wall,
            "tokens_per_cpu_s": tokens / cpu, "answered": sum(s.answer is not None for s in samples),
            "load1": load0, "samples": samples}


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "not run"}
    med = lambda key: statistics.median(r[key] for r in ok)  # noqa: E731
    return {"runs": len(ok), "explanations_per_s": med("explanations_per_s"),
            "tokens_per_s": med("tokens_per_s"), "tokens_per_cpu_s": med("tokens_per_cpu_s"),
            "tokens_per_s_all": [round(r["tokens_per_s"], 1) for r in ok],
            "mean_new_tokens": med("new_tokens") / ok[0]["explanations"],
            "answered": ok[0]["answered"], "explanations": ok[0]["explanations"],
            "load1_median": statistics.median(r["load1"] for r in ok)}


# ------------------------------------------------------------------ machine limits (roofline)

def _best(f, reps: int) -> float:
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def machine_limits(threads: list[int]) -> dict:
    """Memory bandwidth (256 MB copy and read) and torch matmul GFLOP/s at decode shapes, per
    thread count; best of several tries (the least disturbed by other jobs)."""
    out: dict[str, Any] = {}
    a = torch.ones(64 * 2**20)  # 256 MB fp32
    b = torch.empty_like(a)
    for n in threads:
        torch.set_num_threads(n)
        r: dict[str, Any] = {
            "copy_GBps": 2 * a.nbytes / _best(lambda: b.copy_(a), 7) / 1e9,  # read + write
            "read_GBps": a.nbytes / _best(lambda: a.sum(), 7) / 1e9,
        }
        for dt in (torch.float32, torch.bfloat16):
            for m, k, nn in ((64, 576, 1536), (64, 576, 49152), (1, 576, 1536), (1024, 1024, 1024)):
                x, w = torch.randn(m, k, dtype=dt), torch.randn(nn, k, dtype=dt)
                flops = 2 * m * k * nn
                s = _best(lambda: torch.nn.functional.linear(x, w), max(3, min(50, int(4e9 / flops))))
                r[f"gflops_{str(dt)[6:]}_{m}x{k}x{nn}"] = flops / s / 1e9
        out[f"threads{n}"] = r
    return out


def roofline(model: Any, limits: dict, prompt_len: float, new_len: float, threads: int) -> dict:
    """Decode-step bounds: bytes read per step (weights once + each row's KV cache) over the
    measured bandwidth, and time per token for its FLOPs (2 x weights of the transformer's
    linear layers at the GFLOP/s of a 64 x 576 x 1536 product, 2 x the output layer at that of
    64 x 576 x 49152, attention at the former) from the measured GFLOP/s."""
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    head = model.get_output_embeddings().weight.numel()
    body = sum(m.weight.numel() for m in model.modules()
               if isinstance(m, torch.nn.Linear) and m is not model.get_output_embeddings())
    head_dim = getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    kv_per_pos = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim  # values
    ctx = prompt_len + new_len / 2  # mean attended length while decoding
    lim = limits[f"threads{threads}"]
    bw = lim["read_GBps"] * 1e9
    res: dict[str, Any] = {"params": params, "kv_values_per_position": kv_per_pos,
                           "mean_context": ctx, "threads": threads, "read_GBps": bw / 1e9}
    for dt, size in (("fp32", 4), ("bf16", 2)):
        weights = params * size
        kv_row = kv_per_pos * ctx * size
        attn = 4 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim * ctx
        flops_tok = 2 * body + 2 * head + attn
        name = "float32" if dt == "fp32" else "bfloat16"
        g_body = lim[f"gflops_{name}_64x576x1536"] * 1e9
        g_head = lim[f"gflops_{name}_64x576x49152"] * 1e9
        cmp_tps = 1 / ((2 * body + attn) / g_body + 2 * head / g_head)
        gf = flops_tok * cmp_tps
        rows = {}
        for b in (1, 16, 64, 128):
            step_bytes = weights + b * kv_row
            mem_tps = b / (step_bytes / bw)
            rows[b] = {"bytes_per_step_MB": step_bytes / 1e6, "memory_bound_tok_s": mem_tps,
                       "compute_bound_tok_s": cmp_tps, "bound_tok_s": min(mem_tps, cmp_tps)}
        res[dt] = {"weights_MB": weights / 1e6, "kv_per_row_MB": kv_row / 1e6,
                   "flops_per_token_G": flops_tok / 1e9, "gflops_used": gf / 1e9, "batch": rows}
    return res


# ------------------------------------------------------------------ probes

def probe_speed(model: Any, tok: Any, samples: list, qs: dict[str, str], template: str | None,
                args) -> dict:
    from elad_core.elad.rounds import probe_plan
    from elad_core.student.probes import probe_answers

    plan = probe_plan(samples, qs, 12, template)
    prompts = [p.prompt for p in plan]
    out = {}
    for dtype in ("auto", "fp32"):  # the product's default (StudentConfig.sample_dtype), fp32
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        answers = probe_answers(model, tok, prompts, 8, 128, dtype=dtype)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[dtype] = {"probes": len(prompts), "explanations": len(samples), "wall_s": wall,
                      "cpu_s": cpu, "probes_per_s": len(prompts) / wall,
                      "explanations_per_s": len(samples) / wall,
                      "readable": sum(a is not None for a in answers), "load1": load}
    return out


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="student.model: a packaged short name, a .gguf file, a transformers "
                         f"folder or a hub id in the local cache; default {DEFAULT_MODEL} "
                         "(SmolLM2-135M-Instruct, `make install-real`)")
    ap.add_argument("--questions", type=int, default=16, help="GSM8K test questions (first N)")
    ap.add_argument("--k", type=int, default=4, help="explanations per question")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=3, help="rounds over all variants")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                    help="torch threads of every variant but threads1")
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run")
    ap.add_argument("--chat", choices=("auto", "off"), default="auto",
                    help="prompt in the model's chat template when it has one (auto)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "student_sampling.json")
    ap.add_argument("--quick", action="store_true", help="4 questions, 48 new tokens, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.questions, args.max_new_tokens, args.repeats = 4, 48, 1
    torch.set_num_threads(args.threads)
    source = args.model
    args.model = resolve_student(source).path
    started, load_start = time.time(), list(os.getloadavg())
    tok = load_tokenizer(args.model)
    template = chat_prompt_template(tok) if args.chat == "auto" else None
    ids, qs = questions(args.questions)
    models = Models(args.model)
    bf16_ok = native_bf16("cpu")
    todo = [v for v in variants(bf16_ok, args.threads) if args.only is None or v.name in args.only]
    print(f"{len(todo)} variants x {args.repeats} rounds, {len(qs)} questions x K={args.k}, "
          f"<= {args.max_new_tokens} new tokens; native bf16: {bf16_ok}; "
          f"decode dtype auto -> {sampling.decode_dtype(models.get('fp32'))}", flush=True)
    runs: dict[str, list[dict]] = {v.name: [] for v in todo}
    for rnd in range(args.repeats):
        order = todo if rnd % 2 == 0 else list(reversed(todo))  # alternate so drift evens out
        for v in order:
            if v.max_rounds is not None and rnd >= v.max_rounds:
                continue
            r = run_variant(v, models, tok, ids, qs, args, template)
            runs[v.name].append(r)
            msg = r.get("error") or (f"{r['tokens_per_s']:.1f} tok/s, {r['explanations_per_s']:.2f} "
                                     f"expl/s, {r['tokens_per_cpu_s']:.1f} tok/cpu-s")
            print(f"  round {rnd} {v.name:18s} {msg}  (load {r.get('load1', 0):.1f})", flush=True)
    table = {v.name: {"what": v.what, **summarise(runs[v.name])} for v in todo}
    base = table.get("baseline", {}).get("tokens_per_s")
    for row in table.values():
        if base and "tokens_per_s" in row:
            row["speedup_vs_baseline"] = row["tokens_per_s"] / base
    # determinism: the default sampled the same in every round
    det = None
    if "default" in runs and len([r for r in runs["default"] if "samples" in r]) > 1:
        ok = [r["samples"] for r in runs["default"] if "samples" in r]
        det = all(s == ok[0] for s in ok[1:])
    probes = None
    if "default" in runs and any("samples" in r for r in runs["default"]):
        samples = next(r["samples"] for r in runs["default"] if "samples" in r)
        probes = probe_speed(models.get("fp32"), tok, samples, dict(zip(ids, qs, strict=True)),
                             template, args)
    limits = machine_limits(sorted({1, args.threads}))
    prompt_len = statistics.mean(len(tok(sampling.student_prompt(q, template))["input_ids"]) for q in qs)
    new_len = table.get("default", {}).get("mean_new_tokens") or args.max_new_tokens / 2
    roof = roofline(models.get("fp32"), limits, prompt_len, new_len, args.threads)
    print_table(table, args)
    print_limits(roof, limits, table, args)
    for dtype, p in (probes or {}).items():
        print(f"EGSS probes (probe_answers dtype {dtype}, batch 128, <= 8 tokens): {p['probes']} "
              f"probes of {p['explanations']} explanations in {p['wall_s']:.1f} s = "
              f"{p['explanations_per_s']:.2f} explanations/s ({p['probes_per_s']:.1f} probes/s, "
              f"load {p['load1']:.1f})")
    doc = {
        "what": "student sampling speed (issue #21 item 4), benchmarks/student_sampling.py",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "model": source, "model_folder": Path(args.model).name, "questions": len(qs), "k": args.k,
        "max_new_tokens": args.max_new_tokens, "temperature": 0.7, "repeats": args.repeats,
        "threads": args.threads, "chat_template": template is not None,
        "mean_prompt_tokens": prompt_len, "machine": cpu_info(),
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "wall_s": time.time() - started, "nice": os.nice(0),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "python": platform.python_version()},
        "variants": table, "default_deterministic_across_rounds": det, "probes": probes,
        "machine_limits": limits, "roofline": roof,
        "runs": {k: [{x: y for x, y in r.items() if x != "samples"} for r in v] for k, v in runs.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return doc


def print_table(table: dict, args) -> None:
    print(f"\n{'variant':18s} {'expl/s':>7s} {'tok/s':>7s} {'tok/cpu-s':>9s} {'x base':>7s} "
          f"{'mean tok':>8s} {'load':>5s}  what")
    for name, r in table.items():
        if "error" in r:
            print(f"{name:18s} {'-':>7s} {'-':>7s} {'-':>9s} {'-':>7s} {'-':>8s} {'-':>5s}  "
                  f"{r['what']}: FAILED {r['error']}")
            continue
        sp = r.get("speedup_vs_baseline")
        print(f"{name:18s} {r['explanations_per_s']:7.2f} {r['tokens_per_s']:7.1f} "
              f"{r['tokens_per_cpu_s']:9.1f} {(f'{sp:.2f}' if sp else '-'):>7s} "
              f"{r['mean_new_tokens']:8.1f} {r['load1_median']:5.1f}  {r['what']}")


def print_limits(roof: dict, limits: dict, table: dict, args) -> None:
    lim = limits[f"threads{args.threads}"]
    print(f"\nmachine ({args.threads} threads): read {lim['read_GBps']:.1f} GB/s, copy "
          f"{lim['copy_GBps']:.1f} GB/s; linear 64x576x1536 fp32 "
          f"{lim['gflops_float32_64x576x1536']:.0f} GFLOP/s, bf16 {lim['gflops_bfloat16_64x576x1536']:.0f}")
    print(f"decode bounds ({roof['params'] / 1e6:.1f} M params, mean context {roof['mean_context']:.0f} "
          "positions): tokens/s = min(memory: batch / (weights + batch x KV) / bandwidth, "
          "compute: GFLOP/s / FLOPs per token)")
    for dt in ("fp32", "bf16"):
        r = roof[dt]
        cells = ", ".join(f"b={b}: {v['memory_bound_tok_s']:.0f} mem / {v['compute_bound_tok_s']:.0f} cmp"
                          for b, v in r["batch"].items())
        print(f"  {dt}: weights {r['weights_MB']:.0f} MB, KV/row {r['kv_per_row_MB']:.1f} MB, "
              f"{r['flops_per_token_G']:.3f} GFLOP/token -> {cells}")
    d = table.get("default", {})
    if "tokens_per_s" in d:
        dt = "bf16" if native_bf16("cpu") else "fp32"
        bound = roof[dt]["batch"][64]["bound_tok_s"]
        print(f"default ({dt}, batch 64): {d['tokens_per_s']:.0f} tok/s = {d['tokens_per_s'] / bound:.0%} "
              f"of the batch-64 bound {bound:.0f} tok/s (load {d['load1_median']:.1f})")


if __name__ == "__main__":
    main()
