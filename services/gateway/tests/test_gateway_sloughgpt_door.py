"""SloughGPT's generation door (sloughgpt_door/): the body checks and their INVALID_PARAMETER details,
API-Version negotiation, and /generate, its stream and /generate/batch through the app (holds,
charges, usage events, SloughGPT's envelope)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from gateway_fakes import Harness, entry, sse_events

from tollgate.gateway.checks.sampling import ParameterOutOfRange
from tollgate.gateway.sloughgpt_door.request import parse_batch, parse_generate

KEY = {"Authorization": "Bearer user-key"}


def cost(tokens_in: int, tokens_out: int) -> int:
    return tokens_in * 2 + tokens_out * 6  # the fixtures' prices: 2 and 6 micro-credits a token


# -- the body -------------------------------------------------------------------------------------


def test_the_seeds_own_example_body_becomes_a_chat_completion() -> None:
    gen = parse_generate(
        {
            "model_id": "model_123",
            "prompt": "Explain artificial intelligence",
            "max_tokens": 150,
            "temperature": 0.7,
            "top_p": 0.9,
            "stop_sequences": ["\n", "###"],
            "stream": False,
        },
        default_model="",
    )
    assert (gen.model_id, gen.prompts, gen.max_tokens, gen.stream) == (
        "model_123",
        ["Explain artificial intelligence"],
        150,
        False,
    )
    assert gen.payload(gen.prompts[0]) == {
        "messages": [{"role": "user", "content": "Explain artificial intelligence"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["\n", "###"],
        "max_tokens": 150,
    }
    assert parse_generate({"prompt": "Hello", "max_tokens": 10}, default_model="sim").model_id == "sim"


def test_a_parameter_out_of_range_is_the_seeds_error_example_exactly() -> None:
    with pytest.raises(ParameterOutOfRange) as refused:
        parse_generate({"model_id": "m", "prompt": "p", "temperature": 3.0}, default_model="")
    assert refused.value.message == "Parameter 'temperature' must be between 0 and 2"
    assert refused.value.details == {
        "parameter": "temperature",
        "value": 3.0,
        "allowed": "0 to 2",
        "allowed_range": [0.0, 2.0],
    }


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"prompt": "p", "top_p": 1.5}, "top_p"),
        ({"prompt": "p", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "p", "max_tokens": 1.5}, "max_tokens"),
        ({"prompt": "p", "temperature": True}, "temperature"),
        ({"prompt": "p", "stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
        ({"prompt": "p", "stop_sequences": "###"}, "stop_sequences"),
    ],
)
def test_each_parameter_is_checked_with_its_range(body: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ParameterOutOfRange) as refused:
        parse_generate({"model_id": "m", **body}, default_model="")
    assert refused.value.param == parameter and refused.value.details["parameter"] == parameter
    assert "allowed_range" in refused.value.details


def test_a_batch_takes_one_to_a_hundred_prompts_and_no_stream() -> None:
    assert parse_batch({"model_id": "m", "prompts": ["a", "b"]}, default_model="").prompts == ["a", "b"]
    for prompts in ([], ["x"] * 101, "one"):
        with pytest.raises(ParameterOutOfRange):
            parse_batch({"model_id": "m", "prompts": prompts}, default_model="")
    with pytest.raises(Exception, match="prompts\\[1\\]"):
        parse_batch({"model_id": "m", "prompts": ["a", ""]}, default_model="")


# -- the routes -----------------------------------------------------------------------------------


def generate_body(**extra: Any) -> dict[str, Any]:
    return {"model_id": "gpt-sim", "prompt": "say hello please", "max_tokens": 4, **extra}


@pytest.mark.parametrize("path", ["/generate", "/v1/generate"])
async def test_a_generation_is_answered_in_the_seeds_shape_billed_and_recorded(
    harness: Harness, path: str
) -> None:
    r = await harness.client.post(path, json=generate_body(), headers={**KEY, "API-Version": "2024-01"})
    assert r.status_code == 200, r.text
    assert r.headers["api-version"] == "2024-01"
    body = r.json()
    request_id = r.headers["x-request-id"]
    assert body["text"] == "tok0 tok1 tok2 tok3"
    assert {k: body[k] for k in ("id", "object", "model_id", "finish_reason")} == {
        "id": f"gen_{request_id}",
        "object": "generation",
        "model_id": "gpt-sim",
        "finish_reason": "stop",
    }
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert body["cost"] == cost(3, 4) / 1_000_000 and body["created_at"].endswith("Z")
    [event] = harness.emitter.decoded()
    assert (event.endpoint, event.status, event.cost_micros, event.event_id) == (
        path,
        "ok",
        cost(3, 4),
        request_id,
    )
    assert harness.emitter.marked == [request_id]


async def test_an_unknown_api_version_is_a_400_that_holds_nothing(harness: Harness) -> None:
    r = await harness.client.post(
        "/generate", json=generate_body(), headers={**KEY, "API-Version": "2031-07"}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_PARAMETER" and error["details"]["parameter"] == "API-Version"
    assert "2024-01" in error["message"] and error["request_id"] == r.headers["x-request-id"]
    assert r.headers["api-version"] == "2024-01"  # what this server speaks
    vendor = {**KEY, "Accept": "application/vnd.sloughgpt.v2+json"}
    assert (await harness.client.post("/generate", json=generate_body(), headers=vendor)).status_code == 400
    vendor_v1 = {**KEY, "Accept": "application/vnd.sloughgpt.v1+json"}
    assert (
        await harness.client.post("/generate", json=generate_body(), headers=vendor_v1)
    ).status_code == 200
    assert len(harness.billing.reserves) == 1  # only the accepted one


async def test_bad_parameters_are_invalid_parameter_with_details_and_hold_nothing(harness: Harness) -> None:
    r = await harness.client.post("/generate", json=generate_body(temperature=3.0), headers=KEY)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_PARAMETER"
    assert error["message"] == "Parameter 'temperature' must be between 0 and 2"
    assert {k: error["details"][k] for k in ("parameter", "value", "allowed_range")} == {
        "parameter": "temperature",
        "value": 3.0,
        "allowed_range": [0.0, 2.0],
    }
    no_model = await harness.client.post("/generate", json={"prompt": "Hello"}, headers=KEY)
    assert no_model.status_code == 400 and no_model.json()["error"]["details"]["parameter"] == "model_id"
    unknown = await harness.client.post("/generate", json=generate_body(model_id="nope"), headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    anonymous = await harness.client.post("/generate", json=generate_body())
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    assert harness.billing.reserves == [] and harness.emitter.events == []


async def test_a_streamed_generation_sends_text_chunks_then_the_bill(harness: Harness) -> None:
    r = await harness.client.post("/generate", json=generate_body(stream=True), headers=KEY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    data = sse_events(r.content)
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(d) for d in data[:-1]]
    assert "".join(c["text"] for c in chunks) == "tok0 tok1 tok2 tok3 "
    assert all(c["object"] == "generation.chunk" and c["model_id"] == "gpt-sim" for c in chunks)
    assert all(c["finish_reason"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["finish_reason"] == "stop" and last["usage"]["completion_tokens"] == 4
    [event] = harness.emitter.decoded()
    assert (event.stream, event.status, event.cost_micros) == (True, "ok", cost(3, 4))
    assert last["cost"] == cost(3, 4) / 1_000_000


async def test_a_stream_failing_before_its_first_token_ends_with_the_seeds_error_and_charges_nothing(
    harness: Harness,
) -> None:
    body = generate_body(model_id="gpt-breaks-early", stream=True)
    r = await harness.client.post("/generate", json=body, headers=KEY)
    [failure] = [orjson.loads(d) for d in sse_events(r.content)]
    assert failure["error"]["code"] == "INTERNAL_ERROR"
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)


async def test_a_batch_is_one_charged_call_per_prompt(harness: Harness) -> None:
    body = {"model_id": "gpt-sim", "prompts": ["What is it?", "Why?", "How?"], "max_tokens": 4}
    r = await harness.client.post("/generate/batch", json=body, headers=KEY)
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    answer = r.json()
    assert (answer["id"], answer["object"], answer["model_id"]) == (
        f"gen_{request_id}",
        "generation.batch",
        "gpt-sim",
    )
    assert [x["index"] for x in answer["results"]] == [0, 1, 2]
    assert all(x["text"] == "tok0 tok1 tok2 tok3" for x in answer["results"])
    events = {e.event_id: e for e in harness.emitter.decoded()}
    assert sorted(events) == [f"{request_id}-{i}" for i in range(3)]
    assert [hold for _, _, hold, _ in harness.billing.reserves] == [f"{request_id}-{i}" for i in range(3)]
    total = sum(e.cost_micros for e in events.values())
    assert answer["cost"] == total / 1_000_000
    assert answer["usage"]["total_tokens"] == sum(x["usage"]["total_tokens"] for x in answer["results"])
    assert all(e.endpoint == "/generate/batch" and e.status == "ok" for e in events.values())


async def test_a_batch_refused_on_one_prompt_is_refused_whole_and_holds_nothing(harness: Harness) -> None:
    reserve: Callable[..., Awaitable[Any]] = harness.billing.reserve

    async def refuse_the_third(principal: Any, request_id: str, max_cost: int, model: str) -> Any:
        if request_id.endswith("-2"):
            harness.billing.refused_orgs.add(principal.org_id)
        return await reserve(principal, request_id, max_cost, model)

    harness.billing.reserve = refuse_the_third  # type: ignore[method-assign]
    body = {"model_id": "gpt-sim", "prompts": ["a", "b", "c", "d"], "max_tokens": 20}
    r = await harness.client.post("/v1/generate/batch", json=body, headers=KEY)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "INSUFFICIENT_FUNDS"
    request_id = r.headers["x-request-id"]
    # the two admitted before the refusal went back; nothing was sent, nothing charged
    assert harness.billing.releases == [("org-1", f"{request_id}-0"), ("org-1", f"{request_id}-1")]
    assert harness.emitter.marked == [] and all(e.cost_micros == 0 for e in harness.emitter.decoded())


def picky_upstream() -> httpx.AsyncClient:
    """Answers every prompt but those that say "fail", which it refuses (400)."""

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = orjson.loads(request.content)["messages"][0]["content"]
        if "fail" in prompt:
            error = {"message": "refused", "type": "invalid_request_error", "code": "bad", "param": None}
            return httpx.Response(400, json={"error": error})
        answer = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
        }
        return httpx.Response(200, json=answer)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_a_batch_answers_the_prompts_that_succeed_and_names_the_ones_that_fail(
    harness: Harness,
) -> None:
    """Upstream failures are per prompt: answered prompts are charged, failed ones show the error
    in SloughGPT's envelope and are not charged; a batch whose every prompt failed is that error."""
    assert harness.catalog is not None
    harness.catalog.by_name["gpt-picky"] = entry("gpt-picky", "m", picky_upstream())
    body = {"model_id": "gpt-picky", "prompts": ["one", "please fail", "three"], "max_tokens": 4}
    r = await harness.client.post("/generate/batch", json=body, headers=KEY)
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    first, failed, third = r.json()["results"]
    assert (first["text"], third["text"]) == ("ok", "ok")
    assert failed["index"] == 1 and failed["error"]["code"] == "INVALID_PARAMETER"
    charged = {e.event_id: e.cost_micros for e in harness.emitter.decoded() if e.cost_micros}
    assert charged == {f"{request_id}-0": cost(2, 1), f"{request_id}-2": cost(2, 1)}
    assert r.json()["cost"] == 2 * cost(2, 1) / 1_000_000
    assert ("org-1", f"{request_id}-1") in harness.billing.releases
    every = {"model_id": "gpt-picky", "prompts": ["fail", "fail too"], "max_tokens": 4}
    whole = await harness.client.post("/generate/batch", json=every, headers=KEY)
    assert whole.status_code == 400 and whole.json()["error"]["code"] == "INVALID_PARAMETER"


@pytest.mark.parametrize("path", ["/health", "/v1/health"])
async def test_the_health_check_answers_without_a_key(harness: Harness, path: str) -> None:
    r = await harness.client.get(path)
    assert r.status_code == 200 and r.headers["api-version"] == "2024-01"
    body = r.json()
    assert (body["status"], body["api_version"]) == ("healthy", "2024-01")
    assert body["timestamp"].endswith("Z")
