"""Training step time of the embedded student in fp32 against bf16 autocast, in one run.

Issue #13: `train.bf16: auto` picks bf16 only where the device computes it natively. This
script shows why, on the machine it runs on: it builds the default embedded student (the
`make run` config) on 256 GSM8K questions, then times full fine-tuning steps (batch 16,
GSM8K prompt + gold target, ~240 tokens) through the product's own `train_student`, alternating
fp32 and bf16 runs so drift in machine load hits both. It prints what `auto` resolves to here.

    .venv/bin/python benchmarks/precision.py [--steps 6] [--repeats 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import flows  # noqa: E402,F401  (offline environment defaults)
from elad_core.elad.gsm8k import load_examples  # noqa: E402
from elad_core.explanations.prompt import student_prompt, student_target  # noqa: E402
from elad_core.student.config import EmbeddedStudentConfig, TrainConfig  # noqa: E402
from elad_core.student.embedded import build_embedded_student  # noqa: E402
from elad_core.student.precision import native_bf16, use_bf16  # noqa: E402
from elad_core.student.training import train_student  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per timed run")
    ap.add_argument("--repeats", type=int, default=2, help="fp32 / bf16 runs, alternating")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    examples = load_examples("gsm8k", "train")[:256]
    pairs = [(student_prompt(e.question), student_target(e.rationale, e.answer)) for e in examples]
    rows = {"fp32": [], "bf16": []}
    losses = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = build_embedded_student([p + t for p, t in pairs], EmbeddedStudentConfig(),
                                      Path(tmp) / "base")
        for rep in range(args.repeats):
            for name, bf16 in (("fp32", False), ("bf16", True)):
                cfg = TrainConfig(steps=args.steps, batch_size=16, bf16=bf16, warmup_steps=1)
                t0 = time.perf_counter()
                res = train_student(str(base), None, pairs, cfg, "full", Path(tmp) / f"{name}{rep}",
                                    seed=0)
                rows[name].append((time.perf_counter() - t0) / args.steps)
                losses[name] = res.losses
    per_step = {k: min(v) for k, v in rows.items()}
    out = {
        "cpu": platform.processor() or platform.machine(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16_cpu": native_bf16("cpu"), "auto_resolves_to": "bf16" if use_bf16("auto", "cpu") else "fp32",
        "threads": torch.get_num_threads(), "steps": args.steps,
        "s_per_step": per_step, "all_runs_s_per_step": rows,
        "bf16_over_fp32": per_step["bf16"] / per_step["fp32"],
        "final_loss": {k: round(v[-1], 4) for k, v in losses.items()},
    }
    print(f"torch CPU capability {out['torch_cpu_capability']}; native bf16: "
          f"{out['native_bf16_cpu']}; bf16 'auto' -> {out['auto_resolves_to']}")
    print(f"s per training step (batch 16, embedded student, incl. model load / save per run): "
          f"fp32 {per_step['fp32']:.2f}, bf16 autocast {per_step['bf16']:.2f} "
          f"({out['bf16_over_fp32']:.1f}x); last loss fp32 {out['final_loss']['fp32']}, "
          f"bf16 {out['final_loss']['bf16']}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
