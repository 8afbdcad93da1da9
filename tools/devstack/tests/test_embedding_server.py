"""The local embedding server's OpenAI-compatible surface, with a stand-in encoder (the real model
answers in tests/integration/test_vector_search.py)."""

from __future__ import annotations

import base64

import httpx
import numpy as np

from tollgate.devstack.embedding_server import DIMENSIONS, MODEL_NAME, build_app


class CountingEncoder:
    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, len(text) % DIMENSIONS] = 1.0
        return rows, sum(len(t.split()) + 2 for t in texts)


async def test_embeddings_answer_in_openai_shape_with_usage() -> None:
    app = build_app(CountingEncoder())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as c:
        one = await c.post("/v1/embeddings", json={"model": MODEL_NAME, "input": "hello world"})
        many = await c.post("/v1/embeddings", json={"input": ["a", "b c"], "encoding_format": "base64"})
        models = await c.get("/v1/models")
    body = one.json()
    assert body["object"] == "list" and body["model"] == MODEL_NAME
    assert len(body["data"][0]["embedding"]) == DIMENSIONS
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    decoded = np.frombuffer(base64.b64decode(many.json()["data"][1]["embedding"]), dtype=np.float32)
    assert decoded.shape == (DIMENSIONS,) and decoded[3] == 1.0
    assert [m["id"] for m in models.json()["data"]] == [MODEL_NAME]


async def test_bad_inputs_are_openai_errors() -> None:
    app = build_app(CountingEncoder())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as c:
        for body in ({"input": []}, {"input": [1, 2]}, {"input": ""}, {"input": "x", "dimensions": 12}):
            resp = await c.post("/v1/embeddings", json=body)
            assert resp.status_code == 400, body
            assert resp.json()["error"]["type"] == "invalid_request_error"
