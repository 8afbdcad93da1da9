"""The simulator's completions, embeddings and image generations: deterministic, with usage."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tollgate.upstream_sim.app import create_app


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://sim")


async def test_completion_with_usage_and_stream(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", json={"model": "m", "prompt": "a b c", "max_tokens": 2})
    assert r.json()["choices"][0]["text"] == "tok0 tok1"
    assert r.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    r = await client.post(
        "/v1/completions",
        json={
            "model": "m",
            "prompt": "a",
            "max_tokens": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = [e.removeprefix(b"data: ") for e in r.content.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    assert orjson.loads(events[-2])["usage"]["completion_tokens"] == 2
    assert [orjson.loads(e)["choices"][0]["text"] for e in events[:2]] == ["tok0 ", "tok1 "]


async def test_embeddings_are_deterministic_per_text(client: httpx.AsyncClient) -> None:
    one = (await client.post("/v1/embeddings", json={"model": "e", "input": ["x y", "z"]})).json()
    two = (await client.post("/v1/embeddings", json={"model": "e", "input": "x y"})).json()
    assert one["data"][0]["embedding"] == two["data"][0]["embedding"] != one["data"][1]["embedding"]
    assert len(one["data"][0]["embedding"]) == 8
    assert one["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    bad = await client.post("/v1/embeddings", json={"model": "e", "input": 5})
    assert bad.status_code == 400


async def test_images_n_and_usage(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/images/generations", json={"model": "i", "prompt": "a red fox", "n": 3})
    assert len(r.json()["data"]) == 3 and r.json()["usage"]["input_tokens"] == 3
    assert (
        await client.post("/v1/images/generations", json={"model": "i", "prompt": "x", "n": 0})
    ).status_code == 400
    assert (
        await client.post("/v1/images/generations", json={"model": "i-error", "prompt": "x"})
    ).status_code == 500


async def test_stats_count_every_operation_and_each_model(client: httpx.AsyncClient) -> None:
    await client.post("/v1/embeddings", json={"model": "e1", "input": "x"})
    await client.post("/v1/completions", json={"model": "c1", "prompt": "x"})
    await client.post("/v1/images/generations", json={"model": "e1", "prompt": "x"})
    await client.post("/v1/chat/completions", json={"model": "c1", "messages": []})
    stats = (await client.get("/_sim/stats")).json()
    assert (stats["embeddings"], stats["completions"], stats["images"], stats["chat_completions"]) == (
        1,
        1,
        1,
        1,
    )
    assert stats["by_model"] == {"e1": 2, "c1": 2}
    assert (await client.post("/_sim/reset")).json()["by_model"] == {}
