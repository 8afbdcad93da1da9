"""A PEFT LoRA adapter as a GGUF adapter file, which llama.cpp applies on top of its base model.

What llama.cpp reads (written with the `gguf` package that ships with llama.cpp's tooling):
general.architecture of the base, general.type "adapter", adapter.type "lora", adapter.lora.alpha,
and for each adapted weight `<gguf tensor name>.lora_a` (rank x in) and `.lora_b` (out x rank),
named with gguf's own map from Hugging Face tensor names. The LoRA targets here are linear layers
only (no embeddings, no norms), whose weights need no reshaping between the two formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
from safetensors.numpy import load_file

# Hugging Face model_type -> gguf architecture
ARCHITECTURES = {"gemma3_text": gguf.MODEL_ARCH.GEMMA3, "gemma3": gguf.MODEL_ARCH.GEMMA3}


class AdapterConversionError(ValueError):
    pass


def convert(adapter_dir: Path, base_config: dict[str, object], out: Path) -> Path:
    """Writes `out` (atomically) from a folder saved by PeftModel.save_pretrained."""
    lora = json.loads((adapter_dir / "adapter_config.json").read_text())
    model_type = str(base_config.get("model_type", ""))
    if model_type not in ARCHITECTURES:
        raise AdapterConversionError(f"no GGUF architecture known for model_type {model_type!r}")
    arch = ARCHITECTURES[model_type]
    names = gguf.get_tensor_name_map(arch, int(str(base_config["num_hidden_layers"])))
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(lora["lora_alpha"]))
    for name in sorted(tensors):
        module, _, rest = name.removeprefix("base_model.model.").rpartition(".lora_")
        part = rest.split(".", 1)[0]
        if part not in ("A", "B") or not module:
            raise AdapterConversionError(f"unexpected tensor {name!r} in the adapter")
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise AdapterConversionError(f"no GGUF name for {module!r}")
        writer.add_tensor(f"{target}.lora_{part.lower()}", tensors[name].astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out
