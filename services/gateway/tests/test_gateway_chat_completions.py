from __future__ import annotations

import asyncio
import math

import orjson
import pytest
from gateway_fakes import Harness, sse_events

USER = {"authorization": "Bearer user-key"}


def body(model: str = "gpt-sim", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello there world"}], **extra}


async def test_non_stream_answers_with_public_model_name_and_bills_reported_usage(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=body(max_tokens=4), headers=USER)
    assert r.status_code == 200
    data = r.json()
    assert data["model"] == "gpt-sim"
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    # hold: pessimistic prompt = ceil(17 bytes / 2) + 8 = 17 tokens, completion bound = max_tokens
    org, key_id, request_id, max_cost = harness.billing.reserves[0]
    assert (org, key_id) == ("org-1", 1)
    assert max_cost == math.ceil((17 * 2_000_000 + 4 * 6_000_000) / 1_000_000)
    [event] = harness.emitter.decoded()
    assert event.event_id == request_id == r.headers["x-request-id"]
    assert event.hold_id == request_id
    assert (event.tokens_in, event.tokens_out, event.tokens_estimated) == (3, 4, False)
    assert event.cost_micros == math.ceil((3 * 2_000_000 + 4 * 6_000_000) / 1_000_000)
    assert (event.status, event.model, event.stream, event.endpoint) == (
        "ok",
        "gpt-sim",
        False,
        "/v1/chat/completions",
    )
    assert dict(harness.emitter.events[0].headers)["event-type"] == b"UsageRecorded"
    assert harness.emitter.events[0].key == b"org-1"


async def test_stream_forwards_usage_chunk_only_when_asked(harness: Harness) -> None:
    asked = await harness.client.post(
        "/v1/chat/completions",
        json=body(max_tokens=3, stream=True, stream_options={"include_usage": True}),
        headers=USER,
    )
    events = sse_events(asked.content)
    assert asked.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    usage_chunks = [e for e in events[:-1] if orjson.loads(e).get("usage")]
    assert len(usage_chunks) == 1
    assert orjson.loads(usage_chunks[0])["usage"]["completion_tokens"] == 3
    assert all(orjson.loads(e)["model"] == "gpt-sim" for e in events[:-1])

    silent = await harness.client.post(
        "/v1/chat/completions", json=body(max_tokens=2, stream=True), headers=USER
    )
    events = sse_events(silent.content)
    assert events[-1] == "[DONE]"
    assert all("usage" not in orjson.loads(e) for e in events[:-1])
    first, second = harness.emitter.decoded()
    assert (first.tokens_in, first.tokens_out, first.tokens_estimated) == (3, 3, False)
    # the gateway asked the upstream for usage on the client's behalf: billed exactly anyway
    assert (second.tokens_in, second.tokens_out, second.tokens_estimated, second.stream) == (
        3,
        2,
        False,
        True,
    )


async def test_stream_without_upstream_usage_is_counted_and_synthesized(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/chat/completions",
        json=body("gpt-nousage", max_tokens=5, stream=True, stream_options={"include_usage": True}),
        headers=USER,
    )
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    usage = orjson.loads(events[-2])
    assert usage["choices"] == []
    # heuristic prompt: ceil(17 chars / 4) + 4 per message; completion: chunks with content
    assert usage["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    [event] = harness.emitter.decoded()
    assert (event.tokens_in, event.tokens_out, event.tokens_estimated) == (9, 5, True)
    assert event.cost_micros == math.ceil((9 * 2_000_000 + 5 * 6_000_000) / 1_000_000)


async def test_stream_failing_before_its_first_token_charges_nothing_and_releases_the_hold(
    harness: Harness,
) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=body("gpt-breaks-early", stream=True), headers=USER
    )
    assert orjson.loads(sse_events(r.content)[-1])["error"]["code"] == "upstream_error"
    request_id = harness.billing.reserves[0][2]
    for _ in range(50):  # the release runs in a task once the stream has ended
        if harness.billing.releases:
            break
        await asyncio.sleep(0.01)
    assert harness.billing.releases == [("org-1", request_id)]
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros, event.tokens_out) == ("upstream_error", 0, 0)
    assert harness.emitter.marked == []


async def test_stream_failing_after_content_charges_the_prompt_and_the_chunks_relayed(
    harness: Harness,
) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=body("gpt-breaks-late", stream=True), headers=USER
    )
    events = sse_events(r.content)
    assert [orjson.loads(e)["choices"][0]["delta"].get("content") for e in events[1:4]] == [
        "w0 ",
        "w1 ",
        "w2 ",
    ]
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_error"
    assert harness.billing.releases == []
    [event] = harness.emitter.decoded()
    # prompt by the heuristic (ceil(17 / 4) + 4 = 9), one token per content chunk relayed
    assert (event.status, event.tokens_in, event.tokens_out, event.tokens_estimated) == (
        "upstream_error",
        9,
        3,
        True,
    )
    assert event.cost_micros == math.ceil((9 * 2_000_000 + 3 * 6_000_000) / 1_000_000)
    assert len(harness.emitter.marked) == 1


async def test_refused_hold_is_402_and_never_calls_the_upstream(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=body(), headers={"authorization": "Bearer poor-key"}
    )
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "insufficient_credits"
    assert r.json()["error"]["type"] == "insufficient_quota"
    assert harness.sim.state.stats.chat_completions == 0
    assert harness.emitter.events == []
    assert harness.metrics.holds_refused.labels("insufficient_credits")._value.get() == 1


async def test_upstream_failure_is_502_releases_the_hold_and_charges_nothing(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=body("gpt-error"), headers=USER)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    request_id = harness.billing.reserves[0][2]
    assert harness.billing.releases == [("org-1", request_id)]
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros, event.hold_id) == ("upstream_error", 0, request_id)


async def test_upstream_timeout_is_504_and_releases_the_hold(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=body("gpt-timeout"), headers=USER)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert len(harness.billing.releases) == 1
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_timeout", 0)


async def test_keys_from_x_api_key_and_refused_keys_are_cached_briefly(harness: Harness) -> None:
    ok = await harness.client.post("/v1/chat/completions", json=body(), headers={"x-api-key": "user-key"})
    assert ok.status_code == 200
    for _ in range(2):
        r = await harness.client.post(
            "/v1/chat/completions", json=body(), headers={"authorization": "Bearer bad"}
        )
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
    missing = await harness.client.post("/v1/chat/completions", json=body())
    assert missing.status_code == 401
    assert harness.auth.calls == ["user-key", "bad"]


async def test_unknown_model_is_404_model_not_found(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=body("nope"), headers=USER)
    assert r.status_code == 404
    assert r.json()["error"] | {"message": None} == {
        "message": None,
        "type": "invalid_request_error",
        "code": "model_not_found",
        "param": "model",
    }


async def test_client_request_id_is_not_trusted_as_event_id(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=body(), headers={**USER, "x-request-id": "mine"}
    )
    assert r.status_code == 200
    [event] = harness.emitter.decoded()
    assert event.event_id != "mine"
    assert event.event_id == r.headers["x-request-id"]


async def test_unreachable_upstream_is_502_for_streams_too(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=body("gpt-down", stream=True), headers=USER)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros, event.stream) == ("upstream_error", 0, True)
    assert len(harness.billing.releases) == 1


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), "model"),
        (orjson.dumps({"model": "gpt-sim", "messages": []}), "messages"),
        (orjson.dumps({"model": "gpt-sim", "messages": ["hi"]}), "messages[0]"),
        (orjson.dumps({"model": "gpt-sim", "messages": [{"content": "x"}]}), "messages[0].role"),
        (orjson.dumps({"model": "gpt-sim", "messages": [{"role": "user"}], "stream": "yes"}), "stream"),
        (orjson.dumps({"model": "gpt-sim", "messages": [{"role": "user"}], "max_tokens": 0}), "max_tokens"),
    ],
)
async def test_invalid_bodies_are_400_with_param(harness: Harness, payload: bytes, param: str | None) -> None:
    r = await harness.client.post("/v1/chat/completions", content=payload, headers=USER)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["param"] == param
    assert harness.billing.reserves == []
