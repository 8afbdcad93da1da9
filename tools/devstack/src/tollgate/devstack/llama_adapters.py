"""llama-cpp-python's OpenAI-compatible server with LoRA adapters served beside its base model.

`python -m tollgate.devstack.llama_adapters --adapters_dir DIR <llama_cpp.server arguments>` runs
the library's own server (its routes, chat formats, streaming) with one change: the model a request
names is resolved by `AdapterProxy`. The base alias (or any name the library would map to it) gets
the base model alone; a name like `ftjob-<hex>` with `DIR/<name>.gguf` present gets the base model
with that adapter applied (llama.cpp's llama_adapter_lora_init / llama_set_adapters_lora): one base
in memory, adapters loaded once and switched per request. A removed adapter file is unloaded and its
name answers 404, so a deleted fine-tuned model stops being served at once.

(The library's own multi-model config would load a second full model per adapter and swap between
them on every request.)
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.server.app as server_app
import uvicorn
from fastapi import FastAPI, HTTPException
from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.model import LlamaProxy
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

log = logging.getLogger("tollgate.llama_adapters")
ADAPTER_NAME = re.compile(r"^ftjob-[0-9a-f]{8,64}$")
MAX_LOADED = 32


class AdapterProxy(LlamaProxy):
    def __init__(self, models: list[ModelSettings], adapters_dir: Path) -> None:
        super().__init__(models)
        self._dir = adapters_dir
        self._loaded: OrderedDict[str, Any] = OrderedDict()  # name -> llama_adapter_lora_p, LRU
        self._active: str | None = None

    def __call__(self, model: str | None = None) -> llama_cpp.Llama:
        llama = super().__call__(self._default_model_alias)
        name = model if model and ADAPTER_NAME.match(model) else None
        if name is not None and not (self._dir / f"{name}.gguf").is_file():
            self._unload(llama, name)
            raise HTTPException(status_code=404, detail=f"The model '{name}' does not exist")
        if name != self._active:
            self._apply(llama, name)
        return llama

    def _apply(self, llama: llama_cpp.Llama, name: str | None) -> None:
        if name is None:
            code = llama_cpp.llama_set_adapters_lora(llama._ctx.ctx, None, 0, None)
        else:
            adapter = self._load(llama, name)
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            code = llama_cpp.llama_set_adapters_lora(llama._ctx.ctx, adapters, 1, scales)
        if code != 0:
            raise HTTPException(status_code=500, detail=f"applying adapter {name!r} failed ({code})")
        llama.reset()  # the cached prompt was computed with other weights
        self._active = name

    def _load(self, llama: llama_cpp.Llama, name: str) -> Any:
        adapter = self._loaded.get(name)
        if adapter is not None:
            self._loaded.move_to_end(name)
            return adapter
        adapter = llama_cpp.llama_adapter_lora_init(llama.model, str(self._dir / f"{name}.gguf").encode())
        if not adapter:
            raise HTTPException(status_code=500, detail=f"adapter {name!r} could not be loaded")
        self._loaded[name] = adapter
        while len(self._loaded) > MAX_LOADED:
            oldest = next(iter(self._loaded))
            self._unload(llama, oldest)
        log.info("adapter loaded: %s", name)
        return adapter

    def _unload(self, llama: llama_cpp.Llama, name: str) -> None:
        adapter = self._loaded.pop(name, None)
        if adapter is None:
            return
        if self._active == name:
            llama_cpp.llama_set_adapters_lora(llama._ctx.ctx, None, 0, None)
            llama.reset()
            self._active = None
        llama_cpp.llama_adapter_lora_free(adapter)
        log.info("adapter unloaded: %s", name)

    def __iter__(self) -> Iterator[str]:
        yield from super().__iter__()
        if self._dir.is_dir():
            for path in sorted(self._dir.glob("ftjob-*.gguf")):
                yield path.stem


def plain_cpu_buffers() -> None:
    """Load weights into ggml's plain CPU buffers, not its extra buffer types (weights repacked for
    AMX / AVX-512 kernels): on a machine with AMX_INT8 this build segfaults on the first decode with
    them (seen 2026-12-06: exit 139 on the first completion, with llama_cpp.Llama alone too), while
    the plain buffers are correct on every CPU and fast enough for a 270M model.
    LLAMA_EXTRA_BUFFER_TYPES=1 keeps ggml's default."""
    if os.getenv("LLAMA_EXTRA_BUFFER_TYPES") == "1":
        return
    defaults = llama_cpp.llama_cpp.llama_model_default_params

    def model_params() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    # Llama.__init__ takes its model parameters from this function and exposes no argument for it
    llama_cpp.llama_cpp.llama_model_default_params = model_params


def add_health_route(app: FastAPI) -> None:
    """`GET /healthz` for probes (deploy/k8s local-models.yaml): the model is loaded before the server
    listens, and unlike `/v1/models` this takes no model lock, so it answers during a long generation."""

    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/healthz", health, methods=["GET"], include_in_schema=False)


def main() -> None:
    plain_cpu_buffers()
    parser = argparse.ArgumentParser(description=__doc__)
    add_args_from_model(parser, Settings)
    parser.add_argument("--adapters_dir", type=Path, required=True)
    args = parser.parse_args()
    server_settings = parse_model_from_args(ServerSettings, args)
    model_settings = [parse_model_from_args(ModelSettings, args)]
    args.adapters_dir.mkdir(parents=True, exist_ok=True)

    def install_proxy(model_settings: list[ModelSettings]) -> None:
        server_app._llama_proxy = AdapterProxy(model_settings, args.adapters_dir)

    # create_app builds its model proxy through this module function: ours serves the adapters too
    server_app.set_llama_proxy = install_proxy
    app = server_app.create_app(server_settings=server_settings, model_settings=model_settings)
    add_health_route(app)
    uvicorn.run(
        app, host=os.getenv("HOST", server_settings.host), port=int(os.getenv("PORT", server_settings.port))
    )


if __name__ == "__main__":
    main()
