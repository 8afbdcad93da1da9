from __future__ import annotations

import httpx
import orjson
import pytest

from tollgate.upstream_sim.app import completion_token_count, count_prompt_tokens, create_app


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://sim")


def _events(body: bytes) -> list[bytes]:
    return [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e]


def test_prompt_tokens_count_words_across_string_and_text_parts() -> None:
    messages = [
        {"role": "system", "content": "be  brief"},
        {"role": "user", "content": [{"type": "text", "text": "one two three"}, {"type": "image_url"}]},
    ]
    assert count_prompt_tokens(messages) == 5


def test_completion_tokens_capped_at_16_unless_long() -> None:
    assert completion_token_count("m", None) == 16
    assert completion_token_count("m", 5) == 5
    assert completion_token_count("m", 100) == 16
    assert completion_token_count("m-long", None) == 64
    assert completion_token_count("m-long", 100) == 100


async def test_non_stream_reply_and_usage(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 3},
    )
    body = r.json()
    assert r.status_code == 200
    assert body["choices"][0]["message"]["content"] == "tok0 tok1 tok2"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


async def test_stream_with_usage_chunk_then_done(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "hi there"}],
            "max_tokens": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = _events(r.content)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:2]] == ["tok0 ", "tok1 "]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"]["completion_tokens"] == 2
    assert chunks[3]["usage"]["prompt_tokens"] == 2


async def test_nousage_model_never_reports_usage_in_streams(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions",
        json={
            "model": "x-nousage",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert b'"usage"' not in r.content
    assert _events(r.content)[-1] == b"[DONE]"


async def test_error_model_answers_500_in_openai_envelope(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={"model": "sim-error", "messages": []})
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"


async def test_stats_count_and_reset(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert (await client.get("/_sim/stats")).json()["chat_completions"] == 2
    await client.post("/_sim/reset")
    assert (await client.get("/_sim/stats")).json()["chat_completions"] == 0
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/v1/models")).json()["object"] == "list"


async def test_failures_on_cue_for_retries_and_fallbacks(client: httpx.AsyncClient) -> None:
    async def status(model: str, path: str = "/v1/chat/completions") -> int:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "input": "hi"}
        return (await client.post(path, json=body)).status_code

    assert [await status("sim-flaky2") for _ in range(3)] == [500, 500, 200]
    assert [await status("sim-flaky") for _ in range(2)] == [500, 200]  # N defaults to 1
    assert [await status("sim-ratelimited1") for _ in range(2)] == [429, 200]
    assert [await status("sim-ratelimited") for _ in range(2)] == [429, 429]
    assert await status("sim-badrequest") == 400
    assert [await status("sim-flaky1-emb", "/v1/embeddings") for _ in range(2)] == [500, 200]
    await client.post("/_sim/reset")
    assert await status("sim-flaky2") == 500  # the count starts again
