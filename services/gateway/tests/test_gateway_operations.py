"""/v1/completions, /v1/embeddings, /v1/images/generations: priced by their modes, the hold covers
the charge, refusals come before the upstream, usage events carry operation / batch / units."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from gateway_fakes import Harness, sse_events

USER = {"authorization": "Bearer user-key"}


async def test_completion_is_billed_per_token_and_reports_its_cost(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/completions",
        json={"model": "gpt-sim", "prompt": "once upon a time", "max_tokens": 5},
        headers=USER,
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == "gpt-sim" and data["choices"][0]["text"] == "tok0 tok1 tok2 tok3 tok4"
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    [event] = harness.emitter.decoded()
    assert (event.operation, event.endpoint, event.batch, event.units) == (
        "completion",
        "/v1/completions",
        False,
        0,
    )
    assert event.cost_micros == 4 * 2 + 5 * 6 == int(r.headers["x-tollgate-cost-micros"])
    assert harness.billing.reserves[0][3] >= event.cost_micros
    assert harness.sim.state.stats.completions == 1


async def test_streamed_completion_is_relayed_and_billed(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/completions",
        json={"model": "gpt-sim", "prompt": "hi there", "max_tokens": 3, "stream": True},
        headers=USER,
    )
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "tok0 tok1 tok2 "
    assert all("usage" not in c for c in chunks)  # the client did not ask for it
    [event] = harness.emitter.decoded()
    assert (event.status, event.stream, event.tokens_in, event.tokens_out) == ("ok", True, 2, 3)
    assert event.cost_micros == 2 * 2 + 3 * 6


async def test_embeddings_are_billed_by_input_tokens_with_units(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/embeddings", json={"model": "priced", "input": ["hello world", "a b c"]}, headers=USER
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert len(data["data"]) == 2 and data["model"] == "priced"
    assert data["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    [event] = harness.emitter.decoded()
    assert (event.operation, event.units, event.tokens_in) == ("embedding", 2, 5)
    assert event.cost_micros == 250_000 + 1  # per request + ceil(5 tokens * 0.1 micros)


async def test_images_are_billed_per_image_and_batch_doubles(harness: Harness) -> None:
    body = {"model": "priced", "prompt": "a red fox", "n": 3}
    r = await harness.client.post("/v1/images/generations?batch=1", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 3
    [event] = harness.emitter.decoded()
    assert (event.operation, event.units, event.batch) == ("image", 3, True)
    assert event.cost_micros == 2 * (250_000 + 3 * 40_000)
    assert harness.billing.reserves[0][3] == event.cost_micros  # an image's hold is exact


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"model": "gpt-sim", "prompt": "x"}),
        ("/v1/embeddings", {"model": "gpt-sim", "input": "x"}),
        ("/v1/images/generations", {"model": "gpt-sim", "prompt": "x"}),
    ],
)
@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        ("poor-key", 402, "insufficient_credits"),
        ("budget-key", 402, "budget_exceeded"),
        ("quota-key", 429, "quota_exceeded"),
    ],
)
async def test_refusals_come_before_the_upstream(
    harness: Harness, path: str, body: dict[str, object], key: str, status: int, code: str
) -> None:
    r = await harness.client.post(path, json=body, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert harness.sim.state.stats.by_model == {}
    assert harness.emitter.events == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"model": "gpt-sim"}, "prompt"),
        ("/v1/completions", {"model": "gpt-sim", "prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("/v1/embeddings", {"model": "gpt-sim", "input": []}, "input"),
        ("/v1/embeddings", {"input": "x"}, "model"),
        ("/v1/images/generations", {"model": "gpt-sim", "prompt": "x", "n": 11}, "n"),
        ("/v1/images/generations", {"model": "gpt-sim"}, "prompt"),
    ],
)
async def test_bad_input_is_400_in_openai_envelope_and_nothing_held(
    harness: Harness, path: str, body: dict[str, object], param: str
) -> None:
    r = await harness.client.post(path, json=body, headers=USER)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"
    assert harness.billing.reserves == []


async def test_unknown_model_and_missing_key(harness: Harness) -> None:
    r = await harness.client.post("/v1/embeddings", json={"model": "nope", "input": "x"}, headers=USER)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "model_not_found")
    r = await harness.client.post("/v1/embeddings", json={"model": "gpt-sim", "input": "x"})
    assert (r.status_code, r.json()["error"]["type"]) == (401, "authentication_error")


async def test_upstream_failure_releases_the_hold_and_charges_nothing(harness: Harness) -> None:
    r = await harness.client.post("/v1/embeddings", json={"model": "gpt-error", "input": "x"}, headers=USER)
    assert r.status_code == 502
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros, event.operation) == ("upstream_error", 0, "embedding")
    assert harness.billing.releases == [("org-1", harness.billing.reserves[0][2])]


async def _released(harness: Harness) -> list[tuple[str, str]]:
    for _ in range(50):  # the release runs in a task once the stream has ended
        if harness.billing.releases:
            break
        await asyncio.sleep(0.01)
    return harness.billing.releases


async def test_stream_failing_before_its_first_token_charges_nothing(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/completions",
        json={"model": "gpt-breaks-early", "prompt": "hi there", "stream": True},
        headers=USER,
    )
    assert orjson.loads(sse_events(r.content)[-1])["error"]["code"] == "upstream_error"
    assert await _released(harness) == [("org-1", harness.billing.reserves[0][2])]
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)
    assert harness.emitter.marked == []


async def test_indoxrouter_stream_failing_before_its_first_token_reports_no_cost(harness: Harness) -> None:
    r = await harness.client.post(
        "/chat/completions",
        json={
            "provider": "openai-compatible",
            "model": "gpt-breaks-early",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        headers=USER,
    )
    assert await _released(harness) == [("org-1", harness.billing.reserves[0][2])]
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)
    final = [orjson.loads(e) for e in sse_events(r.content) if e != "[DONE]"][-1]
    assert (final["success"], final["error"], final["usage"]["cost"]) == (False, "provider_error", 0)
