"""Routing (gateway/routing/): retries, fallbacks and cooldowns against the simulator failing on cue.

Only the attempt that answered is billed, at its model's price, once; the answer names it in
x-tollgate-deployment and the usage event records it. A clock the tests move drives the cooldowns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import gateway_fakes
import httpx
import orjson
import pytest
from gateway_fakes import (
    FakeAuth,
    FakeBilling,
    FakeCatalog,
    FakeEmitter,
    breaking_stream_client,
    entry,
    failing_client,
    sse_events,
)
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tollgate.common.auth_client import Principal
from tollgate.gateway.app import GatewayParts, build_app
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool
from tollgate.gateway.completions.service import ChatCompletions
from tollgate.gateway.completions.tokens import pessimistic_prompt_tokens
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Pipeline
from tollgate.gateway.pricing.cost import PricingPolicy, Usage, chat_cost, chat_hold
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.proxy.forwarder import Forwarder
from tollgate.gateway.routing.attempts import Router
from tollgate.gateway.routing.breaker import Cooldowns
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER
from tollgate.upstream_sim.app import create_app as create_sim_app

USER = {"authorization": "Bearer user-key"}
NARROW = Principal(
    11, "org-1", "user-11", "user", 0, ("read", "write"), "tg_narrow", 0, 0,
    models_restricted=True, granted_models=frozenset({"r-error", "r-sim"}),
)  # fmt: skip
COOLDOWN_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Routed:
    client: httpx.AsyncClient
    sim: Starlette
    billing: FakeBilling
    emitter: FakeEmitter
    catalog: FakeCatalog
    clock: Clock
    bodies: list[dict[str, object]]  # every upstream request body, in order

    def calls(self, upstream_model: str) -> int:
        return int(self.sim.state.stats.by_model.get(upstream_model, 0))


@pytest.fixture(autouse=True)
def narrow_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "narrow-key", NARROW)


@pytest.fixture
async def routed() -> AsyncIterator[Routed]:
    sim = create_sim_app()
    bodies: list[dict[str, object]] = []

    async def record(request: httpx.Request) -> None:
        bodies.append(orjson.loads(request.content))

    upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), event_hooks={"request": [record]})
    cheap = {"price_in_micros": 1_000_000, "price_out_micros": 3_000_000}
    dear = {"price_in_micros": 10_000_000, "price_out_micros": 30_000_000}
    catalog = FakeCatalog(
        [
            entry("r-error", "sim-error", upstream),  # always 500 (2 / 6 credits per 1M tokens)
            entry("r-sim", "sim-model", upstream, **cheap),
            entry("r-dear", "sim-model-dear", upstream, **dear),
            entry("r-busy", "sim-ratelimited1", upstream),  # 429 once, then answers
            entry("r-limited", "sim-ratelimited", upstream),  # always 429
            entry("r-bad", "sim-badrequest", upstream),  # 400: the caller's fault
            entry("r-down", "sim-model", failing_client(httpx.ConnectError("refused"))),
            entry("r-breaks", "sim-model", breaking_stream_client(2)),  # cut after two chunks
            entry("r-configured", "sim-error", upstream, fallbacks=("r-gone", "r-sim")),
        ]
    )
    clock = Clock()
    router = Router(
        Cooldowns(threshold=2, cooldown_s=COOLDOWN_S, clock=clock),
        retries=1,
        backoff_s=0.05,
        clock=clock,
        sleep=clock.sleep,
    )
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    auth, billing, emitter = FakeAuth(), FakeBilling(), FakeEmitter()
    principals = PrincipalCache(auth.authenticate, metrics)
    pipeline = Pipeline(
        principals,
        catalog,
        billing,
        emitter,
        metrics,
        pricing=PricingPolicy(),
        upstream_timeout_s=5,
        router=router,
    )
    chat, operations = ChatCompletions(pipeline, metrics), Operations(pipeline)
    box = SecretBox("test-secret")
    app = build_app(
        GatewayParts(
            registry=registry,
            sessions=None,  # type: ignore[arg-type]
            snapshot=CatalogSnapshot(None, box, UpstreamPool(lambda _: upstream)),  # type: ignore[arg-type]
            box=box,
            principals=principals,
            chat=chat,
            forwarder=Forwarder({}, upstream),
            default_max_tokens=4096,
            operations=operations,
            version="test",
        )
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    yield Routed(client, sim, billing, emitter, catalog, clock, bodies)
    await client.aclose()
    await upstream.aclose()


def chat(model: str, **extra: object) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 4,
        **extra,
    }


def cost_at(routed: Routed, model: str, tokens_in: int, tokens_out: int) -> int:
    entry = routed.catalog.by_name[model]
    return chat_cost(entry, Usage(tokens_in, tokens_out), PricingPolicy(), False)


async def test_first_model_fails_second_serves_charged_once_at_its_price(routed: Routed) -> None:
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-error", fallbacks=["r-sim"]), headers=USER
    )
    assert r.status_code == 200, r.text
    assert r.headers[DEPLOYMENT_HEADER] == "r-sim" and r.json()["model"] == "r-sim"
    assert (routed.calls("sim-error"), routed.calls("sim-model")) == (2, 1)  # one retry, then the fallback
    assert routed.clock.sleeps == [0.05]
    [event] = routed.emitter.decoded()
    assert (event.model, event.requested_model, event.status) == ("r-sim", "r-error", "ok")
    assert event.cost_micros == cost_at(routed, "r-sim", event.tokens_in, event.tokens_out) > 0
    assert event.cost_micros != cost_at(routed, "r-error", event.tokens_in, event.tokens_out)
    assert routed.billing.releases == [] and len(routed.billing.reserves) == 1
    # the routing fields never reach an upstream
    assert all("fallbacks" not in body and "models" not in body for body in routed.bodies)


async def test_the_hold_covers_the_dearest_model_of_the_chain(routed: Routed) -> None:
    body = chat("r-sim", fallbacks=["r-dear"])
    r = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200 and r.headers[DEPLOYMENT_HEADER] == "r-sim"
    bound = pessimistic_prompt_tokens(body["messages"], None)  # type: ignore[arg-type]
    holds = {
        name: chat_hold(routed.catalog.by_name[name], bound, 4, PricingPolicy(), False)
        for name in ("r-sim", "r-dear")
    }
    assert [held for *_, held in routed.billing.reserves] == [holds["r-dear"]] and holds["r-dear"] > holds[
        "r-sim"
    ]
    [event] = routed.emitter.decoded()  # served by the cheap model: charged at its price
    assert event.cost_micros == cost_at(routed, "r-sim", event.tokens_in, event.tokens_out)


async def test_a_429_is_retried_on_the_same_model(routed: Routed) -> None:
    r = await routed.client.post("/v1/chat/completions", json=chat("r-busy"), headers=USER)
    assert r.status_code == 200, r.text
    assert r.headers[DEPLOYMENT_HEADER] == "r-busy"
    assert routed.calls("sim-ratelimited1") == 2 and routed.clock.sleeps == [0.05]
    [event] = routed.emitter.decoded()
    assert event.status == "ok" and event.cost_micros > 0


async def test_a_persistent_429_passes_through_after_its_retries(routed: Routed) -> None:
    r = await routed.client.post("/v1/chat/completions", json=chat("r-limited"), headers=USER)
    assert r.status_code == 429
    assert r.json()["error"]["message"] == "The simulated upstream is rate limited."
    assert routed.calls("sim-ratelimited") == 2
    [event] = routed.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)
    assert len(routed.billing.releases) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_all_fail_one_error_nothing_charged_hold_released(routed: Routed, stream: bool) -> None:
    body = chat("r-error", fallbacks=["r-down"], stream=stream)
    r = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_error"
    assert "2 models tried (r-error, r-down), 4 attempts" in error["message"]
    [event] = routed.emitter.decoded()
    assert (event.model, event.status, event.cost_micros) == ("r-error", "upstream_error", 0)
    assert routed.billing.releases == [("org-1", routed.billing.reserves[0][2])]


async def test_a_400_from_the_upstream_passes_through_with_no_retry_or_fallback(routed: Routed) -> None:
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-bad", fallbacks=["r-sim"]), headers=USER
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "The simulated upstream refused the request."
    assert (routed.calls("sim-badrequest"), routed.calls("sim-model")) == (1, 0)
    assert routed.clock.sleeps == []
    [event] = routed.emitter.decoded()
    assert event.cost_micros == 0 and len(routed.billing.releases) == 1


async def test_a_cooled_down_model_is_skipped_then_tried_after_its_cooldown(routed: Routed) -> None:
    body = chat("r-error", fallbacks=["r-sim"])
    first = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert first.headers[DEPLOYMENT_HEADER] == "r-sim"
    assert routed.calls("sim-error") == 2  # two failures in a row: it cools down
    second = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert second.headers[DEPLOYMENT_HEADER] == "r-sim"
    assert routed.calls("sim-error") == 2  # skipped
    routed.clock.now += COOLDOWN_S + 1
    third = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert third.headers[DEPLOYMENT_HEADER] == "r-sim"
    assert routed.calls("sim-error") == 3  # tried again; one failure cools it down again
    fourth = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert fourth.status_code == 200 and routed.calls("sim-error") == 3


async def test_a_chain_all_cooling_down_tries_its_first_model_anyway(routed: Routed) -> None:
    body = chat("r-error", fallbacks=["r-down"])
    await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert (routed.calls("sim-error"), len(routed.clock.sleeps)) == (2, 2)
    r = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 502
    assert routed.calls("sim-error") == 3  # both cooling down: the first is tried anyway, once


@pytest.mark.parametrize("field", ["fallbacks", "models"])
@pytest.mark.parametrize("stream", [False, True])
async def test_per_request_fallbacks_for_chat(routed: Routed, field: str, stream: bool) -> None:
    chain = ["r-sim"] if field == "fallbacks" else ["r-error", "r-sim"]  # OpenRouter lists the model too
    body = chat("r-error", stream=stream, **{field: chain})
    r = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert r.headers[DEPLOYMENT_HEADER] == "r-sim"
    if stream:
        events = sse_events(r.content)
        assert events[-1] == "[DONE]"
        assert {orjson.loads(e)["model"] for e in events[:-1]} == {"r-sim"}
    [event] = routed.emitter.decoded()
    assert (event.model, event.stream) == ("r-sim", stream)
    assert event.cost_micros == cost_at(routed, "r-sim", event.tokens_in, event.tokens_out)
    assert all(field not in body for body in routed.bodies)


async def test_a_models_configured_fallbacks_serve_when_it_fails(routed: Routed) -> None:
    # r-configured: fallbacks ["r-gone", "r-sim"]; a configured fallback that is gone is left out
    r = await routed.client.post("/v1/chat/completions", json=chat("r-configured"), headers=USER)
    assert r.status_code == 200 and r.headers[DEPLOYMENT_HEADER] == "r-sim"
    # the request's list replaces the model's
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-configured", fallbacks=["r-down"]), headers=USER
    )
    assert r.status_code == 502 and routed.calls("sim-model") == 1


async def test_a_fallback_the_key_may_not_use_is_403_before_any_hold(routed: Routed) -> None:
    headers = {"authorization": "Bearer narrow-key"}
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-error", fallbacks=["r-dear"]), headers=headers
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "model_not_allowed" and "r-dear" in r.json()["error"]["message"]
    r = await routed.client.post(
        "/v1/completions", json={"model": "r-error", "prompt": "x", "fallbacks": ["r-dear"]}, headers=headers
    )
    assert r.status_code == 403 and "r-dear" in r.json()["error"]["message"]
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-error", fallbacks=["nope"]), headers=USER
    )
    assert r.status_code == 400 and "'nope'" in r.json()["error"]["message"]
    r = await routed.client.post(
        "/v1/chat/completions", json=chat("r-error", fallbacks="r-sim"), headers=USER
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "fallbacks"
    assert routed.billing.reserves == [] and routed.bodies == []
    # a configured fallback the key may not use is skipped, not refused
    r = await routed.client.post("/v1/chat/completions", json=chat("r-sim"), headers=headers)
    assert r.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_other_operations_fall_back_too(routed: Routed, stream: bool) -> None:
    body = {
        "model": "r-error",
        "prompt": "hello there",
        "max_tokens": 4,
        "fallbacks": ["r-sim"],
        "stream": stream,
    }
    r = await routed.client.post("/v1/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert r.headers[DEPLOYMENT_HEADER] == "r-sim"
    [event] = routed.emitter.decoded()
    assert (event.model, event.requested_model, event.status) == ("r-sim", "r-error", "ok")
    assert event.cost_micros == cost_at(routed, "r-sim", event.tokens_in, event.tokens_out) > 0
    assert routed.billing.releases == [] and len(routed.billing.reserves) == 1


async def test_operations_retry_and_fail_as_chat_does(routed: Routed) -> None:
    r = await routed.client.post("/v1/embeddings", json={"model": "r-busy", "input": "hi"}, headers=USER)
    assert r.status_code == 200 and r.headers[DEPLOYMENT_HEADER] == "r-busy"
    r = await routed.client.post(
        "/v1/embeddings", json={"model": "r-error", "input": "hi", "models": ["r-down"]}, headers=USER
    )
    assert r.status_code == 502 and "2 models tried" in r.json()["error"]["message"]
    r = await routed.client.post(
        "/api/v1/chat",
        json={"model": "r-error", "messages": [{"role": "user", "content": "hi"}], "fallbacks": ["r-sim"]},
        headers=USER,
    )
    assert r.status_code == 200 and r.headers[DEPLOYMENT_HEADER] == "r-sim"
    events = routed.emitter.decoded()
    assert [e.cost_micros > 0 for e in events] == [True, False, True]
    assert len(routed.billing.releases) == 1


async def test_the_header_names_the_model_on_the_fast_path(routed: Routed) -> None:
    r = await routed.client.post("/v1/chat/completions", json=chat("r-sim"), headers=USER)
    assert r.headers[DEPLOYMENT_HEADER] == "r-sim"
    r = await routed.client.post("/v1/chat/completions", json=chat("r-sim", stream=True), headers=USER)
    assert r.headers[DEPLOYMENT_HEADER] == "r-sim"
    assert routed.clock.sleeps == []
    assert [e.requested_model for e in routed.emitter.decoded()] == ["", ""]


async def test_a_stream_that_started_does_not_fail_over(routed: Routed) -> None:
    body = chat("r-breaks", stream=True, fallbacks=["r-sim"])
    r = await routed.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200 and r.headers[DEPLOYMENT_HEADER] == "r-breaks"
    assert orjson.loads(sse_events(r.content)[-1])["error"]["code"] == "upstream_error"
    assert routed.calls("sim-model") == 0  # the fallback was never called
    [event] = routed.emitter.decoded()
    assert (event.model, event.status) == ("r-breaks", "upstream_error") and event.cost_micros > 0
