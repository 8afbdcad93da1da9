"""The local embedding model (all-MiniLM-L6-v2 from PyPI) as its own process, started beside the
local Gemma and registered in the gateway's catalog the same way (tollgate.devstack.embedding_server)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from tollgate.devstack.embedding_server import MODEL_NAME
from tollgate.devstack.local_model import ModelServerProcess

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


class EmbeddingServer(ModelServerProcess):
    name = "embeddings"
    marker = "tollgate.devstack.embedding_server"
    load_timeout = LOAD_TIMEOUT

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

    def launch(self) -> tuple[list[str], Mapping[str, str]]:
        return self.command(), {**self.cfg.environ, "HF_HUB_OFFLINE": "1"}

    def registrations(self) -> list[tuple[str, dict[str, object]]]:
        return [("/admin/model/save", registration_body(self.cfg.port("embeddings")))]
