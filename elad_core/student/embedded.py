"""The embedded student: a tiny Llama-architecture causal LM created from a config, offline.

No pretrained weights and no hub access: a byte-level BPE tokenizer is trained on the task's
own texts (every digit its own token, docs/design.md §5: 2.5x shorter than characters and the
arithmetic stays learnable), and a randomly initialised `LlamaForCausalLM` is saved next to it.
The result is a normal model directory: `AutoTokenizer.from_pretrained(dir)` and
`AutoModelForCausalLM.from_pretrained(dir)` load it like any hub model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from elad_core.errors import ConfigError, DataError
from elad_core.student.config import EmbeddedStudentConfig
from elad_core.student.model import atomic_dir

log = logging.getLogger(__name__)

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, BOS, EOS]  # ids 0, 1, 2


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `texts`; digits are split one per token before BPE.

    Special tokens: <pad>=0, <s>=1 (prepended to every encoded text, as Llama does), </s>=2.
    Deterministic for the same texts and vocab_size. Raises DataError on an empty corpus.
    """
    if not any(t.strip() for t in texts):
        raise DataError("cannot train the embedded student's tokenizer: no non-empty texts given")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(texts, trainer)
    tk.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tk.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=BOS, eos_token=EOS, pad_token=PAD)


def llama_config(cfg: EmbeddedStudentConfig, vocab_size: int) -> LlamaConfig:
    """LlamaConfig of the embedded student (tied embeddings, MHA, ids of the specials above)."""
    if cfg.hidden_size % cfg.num_heads:
        raise ConfigError(
            f"option 'student.embedded.hidden_size' ({cfg.hidden_size}) must be a multiple of "
            f"'student.embedded.num_heads' ({cfg.num_heads})"
        )
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )


def build_embedded_student(
    texts: list[str], cfg: EmbeddedStudentConfig, out_dir: Path, seed: int = 0
) -> Path:
    """Train the tokenizer on `texts`, create the seeded random Llama model, save both.

    texts: training corpus of the tokenizer (e.g. prompt + target of pool questions).
    out_dir: written atomically (temp dir + rename); holds tokenizer.json, config.json,
    model.safetensors, generation_config.json and embedded_student.json (the build recipe).
    Returns out_dir. Deterministic for the same texts, cfg and seed.
    Raises DataError on an empty corpus, ConfigError on an inconsistent cfg.
    """
    out_dir = Path(out_dir)
    tok = train_tokenizer(texts, cfg.vocab_size)
    tok.model_max_length = cfg.max_position_embeddings
    model_cfg = llama_config(cfg, vocab_size=len(tok))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(model_cfg)
    model.generation_config.pad_token_id = 0
    n_params = sum(p.numel() for p in model.parameters())
    with atomic_dir(out_dir) as tmp:
        tok.save_pretrained(tmp)
        model.save_pretrained(tmp)
        recipe = {"config": cfg.model_dump(), "seed": seed, "n_texts": len(texts),
                  "vocab_size": len(tok), "n_params": n_params}
        (tmp / "embedded_student.json").write_text(json.dumps(recipe, indent=2), encoding="utf-8")
    log.info("built embedded student in %s: vocab %d, %.2f M parameters",
             out_dir, len(tok), n_params / 1e6)
    return out_dir
