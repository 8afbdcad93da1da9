"""The base model, dequantized once: transformers reads the GGUF (about a minute for Gemma 3 270M
on two cores) and the result is kept as safetensors that later jobs load in about a second.

One folder per base (named after the GGUF's name and size), built in a temporary folder and renamed,
under an exclusive file lock, so concurrent jobs prepare it once and never read half of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

READY_MARKER = "tollgate-base.ready"


def cache_dir_for(cache_root: Path, base_name: str, source: Path) -> Path:
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in base_name)
    return cache_root / f"{safe}-{key}"


def is_prepared(folder: Path) -> bool:
    return (folder / READY_MARKER).exists()


def prepare_base(cache_root: Path, base_name: str, source: Path) -> Path:
    """The folder of the dequantized base (config, weights, tokenizer), built on first use."""
    folder = cache_dir_for(cache_root, base_name, source)
    if is_prepared(folder):
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    with (cache_root / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_prepared(folder):  # another job prepared it while we waited
            return folder
        log.info("dequantizing base model", extra={"base_model": base_name, "source": str(source)})
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model, tokenizer = _load_gguf(source)
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        (partial / READY_MARKER).write_text(base_name + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return folder


def _load_gguf(source: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(source.parent),
        gguf_file=source.name,
        dtype=torch.float32,
        # without dequantize the model keeps GGUF quantization, which can be neither trained nor saved
        quantization_config=GgufConfig(dequantize=True),
    )
    return model, tokenizer
