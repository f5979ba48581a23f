"""Fine-tuning the student on (prompt, target) pairs: full weights or a LoRA adapter.

A short, explicit loop: loss on the target tokens only (prompt and padding are
-100), right padding to a multiple of 16 and `torch.set_flush_denormal(True)` (docs/design.md §5:
without them a CPU step slowed from 0.45 s to over 3 s), bf16 autocast where the device
computes it natively (`train.bf16: auto`, elad_core/student/precision.py), AdamW with linear
warm-up then cosine decay to `min_lr_ratio × lr`, gradient clipping.
The loop runs through `accelerate.Accelerator`: one process on the CPU or one GPU, or data
parallel over several GPUs (or CPU processes) under `accelerate launch`, where each process
takes its share of every batch and gradients are averaged (`launch_training` starts it).
Source: docs/design.md §2 step 6; the LoRA path follows peft's `get_peft_model` recipe; the
multi-process path follows accelerate's "Add Accelerate to your code" recipe.
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from elad_core.errors import ConfigError, DataError, EladError
from elad_core.student.config import TrainConfig
from elad_core.student.model import (
    atomic_dir,
    is_adapter_dir,
    load_causal_lm,
    load_tokenizer,
)
from elad_core.student.precision import precision_name, use_bf16
from elad_core.student.result import TrainResult

log = logging.getLogger(__name__)

PAD_MULTIPLE = 16
TRAIN_LOG = "train_log.json"



def encode_examples(
    tok: Any, examples: list[tuple[str, str]], max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) → (input_ids, labels), eos appended to the target, prompt labels -100.

    Sequences longer than max_length are cut at the right; pairs left with no target token
    are dropped (logged). Raises DataError when nothing is left.
    """
    encoded = []
    for prompt, target in examples:
        p = tok(prompt)["input_ids"]
        t = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = (p + t)[:max_length]
        labels = ([-100] * len(p) + t)[:max_length]
        if any(x != -100 for x in labels):
            encoded.append((ids, labels))
    if len(encoded) < len(examples):
        log.warning("%d of %d examples have no target token within max_length %d; dropped",
                    len(examples) - len(encoded), len(examples), max_length)
    if not encoded:
        raise DataError(f"no trainable example among {len(examples)} (max_length {max_length})")
    return encoded


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to a multiple of 16 tokens → input_ids, attention_mask, labels, each (B, T)."""
    width = max(len(ids) for ids, _ in batch)
    width = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lr_lambda(cfg: TrainConfig):
    """Multiplier of the base lr at optimizer step s (0-based): linear warm-up, cosine decay."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine

    return factor


def epoch_batches(n: int, batch_size: int, steps: int, seed: int):
    """`steps` index batches from seeded shuffled epochs, consecutive epochs concatenated."""
    rng = random.Random(seed)
    stream: list[int] = []
    size = min(batch_size, n)
    for _ in range(steps):
        while len(stream) < size:
            epoch = list(range(n))
            rng.shuffle(epoch)
            stream += epoch
        yield stream[:size]
        stream = stream[size:]


def _load_for_training(
    base: str, init_weights: Path | None, mode: str, cfg: TrainConfig, device: str
) -> tuple[Any, Any]:
    """(model with only the trained parameters requiring grad, tokenizer)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    adapter = init_weights is not None and is_adapter_dir(Path(init_weights))
    full_init = init_weights is not None and not adapter
    model = load_causal_lm(init_weights if full_init else base, device)
    tok = load_tokenizer(init_weights if full_init else base)
    if mode == "full":
        if adapter:
            model = PeftModel.from_pretrained(model, str(init_weights)).merge_and_unload()
        model.requires_grad_(True)
        return model, tok
    if adapter:
        return PeftModel.from_pretrained(model, str(init_weights), is_trainable=True), tok
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tok


def make_accelerator(device: str) -> Any:
    """The `accelerate.Accelerator` for `device`: "cpu" → CPU processes; otherwise the GPU
    accelerate assigns to this process (cuda:0 alone, one per process under `accelerate
    launch`; select GPUs with CUDA_VISIBLE_DEVICES). Mixed precision stays ours (bf16 autocast)."""
    from accelerate import Accelerator

    return Accelerator(cpu=torch.device(device).type == "cpu")


def train_student(
    base: str, init_weights: Path | None, examples: list[tuple[str, str]], cfg: TrainConfig,
    mode: str, out_dir: Path, seed: int, device: str = "cpu", progress: bool = False,
) -> TrainResult:
    """Fine-tune for cfg.steps optimizer steps and save the result to `out_dir` (atomically).

    base: hub id or model dir. init_weights: None (start from base), a full model dir or a
    peft adapter dir to continue from. examples: (student_prompt(q), student_target(...)).
    mode "full": every weight trained, out_dir is a full model dir; mode "lora": only a new
    (or the continued) adapter is trained, out_dir is a standard peft adapter dir. Both get
    the tokenizer and train_log.json. Deterministic for the same inputs and seed on one device.
    Under `accelerate launch` with N processes each takes 1/N of every batch (the global
    batch and the lr schedule stay those of cfg) and the main process saves; every process
    returns the same TrainResult. Raises ConfigError on an unknown mode or a batch smaller
    than the number of processes, DataError when no example is trainable.
    """
    if mode not in ("full", "lora"):
        raise ConfigError(f"option 'train.mode' must be 'full' or 'lora' here, got {mode!r}")
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    acc = make_accelerator(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, tok = _load_for_training(base, init_weights, mode, cfg, str(acc.device))
        data = encode_examples(tok, examples, cfg.max_length)
        if min(cfg.batch_size, len(data)) < acc.num_processes:
            raise ConfigError(f"option 'train.batch_size': a batch of {min(cfg.batch_size, len(data))} "
                              f"cannot be split over {acc.num_processes} processes")
        bf16 = use_bf16(cfg.bf16, str(acc.device))
        losses, n_tokens, model = _train_loop(acc, model, tok, data, cfg, mode, seed, progress, bf16)
    model.eval()
    wall_s = time.perf_counter() - t0
    result = TrainResult(losses, len(data), wall_s, precision_name(bf16), mode, n_tokens,
                         acc.num_processes)
    if acc.is_main_process:
        with atomic_dir(Path(out_dir)) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            record = {**asdict(result), "mode": mode, "seed": seed, "base": str(base),
                      "init_weights": None if init_weights is None else str(init_weights),
                      "config": cfg.model_dump(mode="json")}
            (tmp / TRAIN_LOG).write_text(json.dumps(record, indent=1), encoding="utf-8")
        log.info("trained %s (%s) %d steps on %d examples in %.1f s: loss %.3f → %.3f",
                 out_dir, mode, cfg.steps, len(data), wall_s, losses[0], losses[-1])
    acc.wait_for_everyone()  # no process returns before the model is on disk
    return result


def optimizer_steps(model: Any, params: list, opt: Any, sched: Any, batches: Iterable[dict],
                    device_type: str, bf16: bool, grad_clip: float,
                    backward: Callable = torch.Tensor.backward,
                    clip: Callable = torch.nn.utils.clip_grad_norm_,
                    on_step: Callable | None = None) -> list[float]:
    """The training loop of every student (ELAD's causal LM, EvoKD's encoder): one optimizer
    step per batch of `batches` (dicts of tensors on the device, with labels): forward under
    bf16 autocast when `bf16`, `backward(loss)`, `clip(params, grad_clip)`, AdamW step, lr
    scheduler step, gradients cleared. Returns the loss of each step; `on_step(loss, batch)`,
    when given, returns it instead (e.g. averaged over processes) and sees each batch.
    """
    model.train()
    losses: list[float] = []
    for batch in batches:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        backward(loss)
        clip(params, grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(on_step(loss, batch) if on_step else float(loss.item()))
    return losses


def _train_loop(acc: Any, model: Any, tok: Any, data: list, cfg: TrainConfig, mode: str,
                seed: int, progress: bool, bf16: bool) -> tuple[list[float], int, Any]:
    """(loss per step, target tokens, the trained model unwrapped from accelerate's wrapper)."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr if mode == "full" else cfg.lora_lr
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    # one scheduler step per optimizer step whatever the process count: not prepared
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    model, opt = acc.prepare(model, opt)
    rank, world = acc.process_index, acc.num_processes
    n_tokens = 0
    bar = tqdm(total=cfg.steps, desc=f"train ({mode})", unit="step",
               disable=not (progress and acc.is_main_process))
    batches = ({k: v.to(acc.device) for k, v in collate(
        [data[i] for i in idx[rank::world]], tok.pad_token_id).items()}  # this process's share
        for idx in epoch_batches(len(data), cfg.batch_size, cfg.steps, seed))

    def on_step(loss: Any, batch: dict) -> float:
        nonlocal n_tokens
        tokens = (batch["labels"][:, 1:] != -100).sum()
        if world > 1:  # the mean loss and the total tokens over processes
            loss, tokens = acc.reduce(loss.detach(), "mean"), acc.reduce(tokens, "sum")
        n_tokens += int(tokens)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.update(1)
        return loss.item()

    losses = optimizer_steps(model, params, opt, sched, batches, acc.device.type, bf16,
                             cfg.grad_clip, acc.backward, acc.clip_grad_norm_, on_step)
    bar.close()
    return losses, n_tokens, acc.unwrap_model(model)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(processes: int, device: str, spec: Path) -> list[str]:
    """The command that runs `python -m elad_core.student.training SPEC` in `processes` processes.

    GPUs: `accelerate launch --multi_gpu` (one GPU per process). CPU: torchrun, which is what
    `accelerate launch --multi_gpu` runs underneath (accelerate's own CPU multi-process
    launcher needs MPI); Accelerator then picks the gloo backend.
    """
    port = str(_free_port())
    if torch.device(device).type == "cpu":
        head = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
                "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1",
                "--master_port", port]
    else:
        head = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_machines", "1", "--num_processes", str(processes),
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port]
    return head + ["-m", "elad_core.student.training", str(spec)]


def launch_training(
    base: str, init_weights: Path | None, examples: list[tuple[str, str]], cfg: TrainConfig,
    mode: str, out_dir: Path, seed: int, device: str = "cpu", processes: int = 1,
    progress: bool = False,
) -> TrainResult:
    """`train_student` in `processes` data-parallel processes (one per GPU); 1: in this process.

    Several processes: the inputs go to a JSON spec file, `launch_command` runs the same
    `train_student` in each process, and the result is read back from out_dir/train_log.json.
    Raises EladError with the launcher's last output lines when it fails.
    """
    if processes == 1:
        return train_student(base, init_weights, examples, cfg, mode, out_dir, seed, device, progress)
    with tempfile.TemporaryDirectory(prefix="elad-train-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({
            "base": str(base), "init_weights": None if init_weights is None else str(init_weights),
            "examples": [list(e) for e in examples], "train": cfg.model_dump(mode="json"),
            "mode": mode, "out_dir": str(out_dir), "seed": seed, "device": device}), encoding="utf-8")
        proc = subprocess.run(launch_command(processes, device, spec), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EladError(f"training in {processes} processes failed (exit {proc.returncode}):\n{tail}")
    record = json.loads((Path(out_dir) / TRAIN_LOG).read_text(encoding="utf-8"))
    return TrainResult(record["losses"], record["n_examples"], record["wall_s"],
                       record.get("precision", "fp32"), record.get("mode", mode),
                       record["n_tokens"], record["num_processes"])


def main(argv: list[str] | None = None) -> None:
    """Entry point of each launched process: `python -m elad_core.student.training SPEC.json`.

    SPEC (written by launch_training): base, init_weights, examples ([prompt, target] pairs),
    train (TrainConfig), mode, out_dir, seed, device. A missing field ends with
    `SPEC: field 'x' is missing` (ConfigError).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m elad_core.student.training SPEC.json")
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    missing = [k for k in ("base", "init_weights", "examples", "train", "mode", "out_dir", "seed",
                           "device") if k not in spec]
    if missing:
        raise ConfigError(f"{args[0]}: field {missing[0]!r} is missing")
    init = Path(spec["init_weights"]) if spec["init_weights"] else None
    train_student(spec["base"], init, [tuple(e) for e in spec["examples"]],
                  TrainConfig(**spec["train"]), spec["mode"], Path(spec["out_dir"]), spec["seed"],
                  device=spec["device"])


if __name__ == "__main__":
    main()
