"""Fixtures: the gateway app wired with fakes and the upstream simulator served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from gateway_fakes import (
    FakeAuth,
    FakeBilling,
    FakeCatalog,
    FakeEmitter,
    Harness,
    anthropic_entries,
    bedrock_entries,
    breaking_stream_client,
    entry,
    failing_client,
)
from prometheus_client import CollectorRegistry

from tollgate.gateway.app import GatewayParts, build_app
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool
from tollgate.gateway.completions.service import ChatCompletions
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Pipeline
from tollgate.gateway.pricing.cost import PricingPolicy
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.proxy.forwarder import Forwarder
from tollgate.upstream_sim.app import create_app as create_sim_app


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    sim = create_sim_app()
    upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim))
    catalog = FakeCatalog(
        [
            entry("gpt-sim", "sim-model", upstream),
            entry("gpt-nousage", "sim-nousage", upstream),
            entry("gpt-error", "sim-error", upstream),
            entry("gpt-timeout", "sim-model", failing_client(httpx.ReadTimeout("slow"))),
            entry("gpt-down", "sim-model", failing_client(httpx.ConnectError("refused"))),
            entry("gpt-breaks-early", "sim-model", breaking_stream_client(0)),
            entry("gpt-breaks-late", "sim-model", breaking_stream_client(3)),
            entry("groq/gemma-groq-416", "sim-model", upstream),  # the credit chat API's example model
            # fine-tuned models: org-1's own (the user key's org) and another organisation's
            entry("ft:gpt-sim:org-1:mine:ftjob-1", "sim-model", upstream),
            entry("ft:gpt-sim:org-other:theirs:ftjob-2", "sim-model", upstream),
            entry(
                "priced",
                "sim-model",
                upstream,
                price_request_micros=250_000,
                price_image_micros=40_000,
                price_embedding_micros=100_000,
            ),
            # provider "anthropic": the simulator's Messages API (/v1/messages), cued by model name
            *anthropic_entries(upstream),
            *bedrock_entries(upstream),  # provider "bedrock-converse": /model/{id}/converse
        ]
    )
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    auth, billing, emitter = FakeAuth(), FakeBilling(), FakeEmitter()
    principals = PrincipalCache(auth.authenticate, metrics)
    pipeline = Pipeline(
        principals, catalog, billing, emitter, metrics, pricing=PricingPolicy(), upstream_timeout_s=5
    )
    chat, operations = ChatCompletions(pipeline, metrics), Operations(pipeline)
    box = SecretBox("test-secret")
    app = build_app(
        GatewayParts(
            registry=registry,
            sessions=None,  # type: ignore[arg-type]  # catalog admin routes are not used here
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
    yield Harness(client, sim, billing, emitter, auth, metrics, catalog, app)
    await client.aclose()
    await upstream.aclose()
