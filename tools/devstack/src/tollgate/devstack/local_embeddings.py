"""The local embedding model (all-MiniLM-L6-v2 from PyPI) as its own process, started beside the
local Gemma and registered in the gateway's catalog the same way (tollgate.devstack.embedding_server)."""

from __future__ import annotations

import json
import sys

import httpx

from tollgate.devstack.config import StackConfig
from tollgate.devstack.embedding_server import MODEL_NAME
from tollgate.devstack.procs import StackError, port_open, running_pid, spawn, terminate, wait_http

LOAD_TIMEOUT = 240.0  # importing torch + sentence-transformers on a busy 2-core machine
# Credits per 1M embedded tokens (the catalog's embedding price; prompts are priced the same).
PRICE_EMBEDDING = 0.02


def registration_body(port: int) -> dict[str, object]:
    """The admin API's model upsert (by name) pointing the gateway at the embedding server."""
    config = {"base_url": f"http://127.0.0.1:{port}/v1", "model": MODEL_NAME}
    return {
        "name": MODEL_NAME,
        "provider": "openai-compatible",
        "config": json.dumps(config),
        "price_in": PRICE_EMBEDDING,
        "price_out": 0,
        "price_embedding": PRICE_EMBEDDING,
    }


class EmbeddingServer:
    name = "embeddings"
    marker = "tollgate.devstack.embedding_server"

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.pidfile = cfg.run_dir / "embeddings.pid"
        self.log_path = cfg.logs_dir / "embeddings.log"

    def pid(self) -> int | None:
        return running_pid(self.pidfile, self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            self.marker,
            "--models_dir",
            str(self.cfg.models_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.cfg.port("embeddings")),
            "--threads",
            "2",
        ]

    def spawn(self) -> int:
        """Start loading the model without waiting (it loads while the services start)."""
        pid = self.pid()
        if pid is not None:
            return pid
        if port_open(self.cfg.port("embeddings")):
            raise StackError(
                f"embeddings: port {self.cfg.port('embeddings')} already in use by another process"
            )
        env = {**self.cfg.environ, "HF_HUB_OFFLINE": "1"}
        return spawn(self.command(), env=env, log_path=self.log_path, pidfile=self.pidfile, cwd=self.cfg.root)

    def start(self) -> None:
        pid = self.spawn()
        wait_http(
            self.cfg.url("embeddings") + "/v1/models",
            name="embeddings",
            pid=pid,
            log_path=self.log_path,
            timeout=LOAD_TIMEOUT,
        )

    def stop(self, kill: bool = False) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, kill=kill, timeout=20)
        self.pidfile.unlink(missing_ok=True)

    def register(self) -> None:
        headers = {"Authorization": f"Bearer {self.cfg.admin_api_key}"}
        body = registration_body(self.cfg.port("embeddings"))
        response = httpx.post(
            self.cfg.url("gateway") + "/admin/model/save", headers=headers, json=body, timeout=30
        )
        if response.status_code >= 300:
            status, text = response.status_code, response.text[:500]
            raise StackError(f"registering {MODEL_NAME} failed: HTTP {status} {text}")
