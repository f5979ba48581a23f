"""Training / prediction precision that fits the hardware: `bf16: auto | true | false`.

bf16 autocast pays only where the device computes bf16 natively. On a CPU without native bf16
(an AVX2-only AMD EPYC, measured) every autocast op is emulated: one training step of the
embedded student took 4.7 s with bf16 autocast against 0.46 s in fp32, with the same losses to
three decimals. So `auto` (the default of ELAD's `train.bf16` and EvoKD's `student.bf16`) means
bf16 on a CUDA device that supports it and on a CPU whose torch build reports native bf16
(AVX512-BF16 or AMX on x86, the BF16 extension on Arm), fp32 everywhere else; `true` / `false`
force it. The precision used is recorded in each round's manifest.json (docs/design.md §3).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Literal

import torch

Bf16Setting = Literal["auto"] | bool


def native_bf16(device: str) -> bool:
    """Whether `device` ("cpu", "cuda", "cuda:1", "mps", ...) computes bf16 natively."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return _arm_bf16()


def _arm_bf16() -> bool:
    """The Arm BF16 extension, read from /proc/cpuinfo's feature flags (Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.lower().startswith("features") and " bf16" in f" {line.split(':', 1)[-1]}"
               for line in text.splitlines())


def use_bf16(setting: Bf16Setting, device: str) -> bool:
    """Resolve a `bf16` option for `device`: True / False as given, "auto" as `native_bf16`."""
    return native_bf16(device) if setting == "auto" else bool(setting)


def precision_name(bf16: bool) -> str:
    """"bf16" (bf16 autocast) or "fp32": the value recorded as `precision` in manifest.json."""
    return "bf16" if bf16 else "fp32"
