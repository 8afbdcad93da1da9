"""The in-memory catalog the hot path reads, plus one pooled HTTP client per upstream base URL.

Reloaded right after a save/delete in this process and polled every few seconds so other
gateway processes converge; the hot path only does a dict lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.gateway.catalog.http1 import Http1Pool
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.upstreams import DEFAULT_LABEL, stored_deployments, stored_weight_and_priority
from tollgate.gateway.limits.specs import LIMIT_MEASURES, Limit, Scope, Tier
from tollgate.gateway.providers.registry import provider_for

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], httpx.AsyncClient]


def default_client_factory(max_connections: int) -> ClientFactory:
    def make(base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            http1=True,
            http2=False,
            trust_env=False,  # no proxy/netrc lookups per request
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=30.0,
            ),
        )

    return make


class UpstreamPool:
    """One keep-alive client per upstream base URL, created on first use and kept for the process."""

    def __init__(self, factory: ClientFactory, *, lean_http1: bool = True) -> None:
        self._factory = factory
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._lean_http1 = lean_http1
        self._lean: dict[str, Http1Pool] = {}

    def get(self, base_url: str) -> httpx.AsyncClient:
        client = self._clients.get(base_url)
        if client is None:
            client = self._clients[base_url] = self._factory(base_url)
        return client

    def lean(self, base_url: str) -> Http1Pool | None:
        """The lean client for plain-http upstreams' non-streamed calls (None: use httpx)."""
        if not self._lean_http1 or not base_url.startswith("http://"):
            return None
        pool = self._lean.get(base_url)
        if pool is None:
            pool = self._lean[base_url] = Http1Pool(base_url)
        return pool

    async def close(self) -> None:
        for pool in self._lean.values():
            pool.close()
        self._lean = {}
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: int
    name: str
    provider: str
    chat_url: str
    upstream_model: str
    api_key: str | None  # decrypted in memory only, to call the provider
    price_in_micros: int
    price_out_micros: int
    max_tokens_default: int
    group_id: int
    created_unix: int
    client: httpx.AsyncClient
    lean: Http1Pool | None = None  # set for plain-http OpenAI-compatible upstreams' non-streamed calls
    # Pricing modes (tollgate.gateway.pricing.cost): flat per request, per image, per 1M embedded tokens.
    price_request_micros: int = 0
    price_image_micros: int = 0
    price_embedding_micros: int | None = None
    # Token classes: cached input, cache writes, reasoning (None: the input / output price).
    price_cached_in_micros: int | None = None
    price_cache_write_micros: int | None = None
    price_reasoning_micros: int | None = None
    # Routing (routing/chain.py): catalog models tried in order when this one fails (config.fallbacks).
    fallbacks: tuple[str, ...] = ()
    # Deployments (catalog/upstreams.py, routing/chain.py): the id of the one this entry calls ("" reads
    # as the model name; "<model>/<label>" for a model with several), and on the model's entry (its
    # top-level upstream, "<model>/default") the model's other deployments: entries with the same name,
    # prices and limits, each with its own provider, URL, key, weight and priority.
    deployment_id: str = ""
    deployments: tuple[CatalogEntry, ...] = ()
    # Rate limits of the model itself, across every key (config.rpm / tpm / tpd; limits/gate.py)
    limits: tuple[Limit, ...] = ()
    weight: int = 1  # relative share of traffic among deployments of the same priority
    priority: int = 0  # lower goes first; a higher number only when every lower one failed or cools down

    @property
    def deployment(self) -> str:
        """What x-tollgate-deployment and the usage event name: the model for a single deployment."""
        return self.deployment_id or self.name

    @property
    def routed(self) -> bool:
        """Whether a request goes through a chain (routing/): fallbacks or several deployments."""
        return bool(self.fallbacks or self.deployments)

    @property
    def api_base(self) -> str:
        """The provider's base URL (…/v1), for the other operations' paths (Anthropic's /messages)."""
        return self.chat_url.removesuffix("/chat/completions")


class CatalogSnapshot:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        pool: UpstreamPool,
        poll_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._pool = pool
        self._poll_s = poll_s
        self._by_name: dict[str, CatalogEntry] = {}
        self._version: tuple[int, datetime | None] | None = None
        self._lock = asyncio.Lock()

    def get(self, name: str) -> CatalogEntry | None:
        return self._by_name.get(name)

    def entries(self) -> list[CatalogEntry]:
        return list(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    async def reload(self) -> None:
        async with self._lock, self._sessions() as session:
            repo = ModelRepository(session)
            version = await repo.version()
            rows = await repo.all_live()
        entries = {}
        for row in rows:
            entry = self._entry(row)
            if entry is not None:
                entries[entry.name] = entry
        # Swapping the whole dict keeps readers lock-free: they see the old or the new catalog.
        self._by_name = entries
        self._version = version

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                async with self._sessions() as session:
                    version = await ModelRepository(session).version()
                if version != self._version:
                    await self.reload()
            except Exception:  # the DB may be briefly away; keep serving the last snapshot
                log.warning("catalog poll failed; keeping the current snapshot", exc_info=True)

    def _entry(self, row: Model) -> CatalogEntry | None:
        """The model's entry: its top-level upstream, carrying its other deployments (if any)."""
        api_key = None
        if row.api_key_encrypted:
            try:
                api_key = self._box.decrypt(row.api_key_encrypted)
            except ValueError:
                log.error("model %s: provider secret unreadable, model disabled", row.name)
                return None
        extra = row.extra_config or {}
        weight, priority = stored_weight_and_priority(extra)
        model = CatalogEntry(
            id=row.id,
            name=row.name,
            provider=row.provider,
            chat_url=f"{row.base_url}/chat/completions",
            upstream_model=row.upstream_model,
            api_key=api_key,
            price_in_micros=row.price_in_micros,
            price_out_micros=row.price_out_micros,
            max_tokens_default=row.max_tokens_default,
            group_id=row.group_id,
            created_unix=int(row.created_at.timestamp()),
            client=self._pool.get(row.base_url),
            # the lean client speaks to OpenAI-compatible upstreams; other dialects go through httpx
            lean=self._lean(row.provider, row.base_url),
            price_request_micros=row.price_request_micros,
            price_image_micros=row.price_image_micros,
            price_embedding_micros=row.price_embedding_micros,
            price_cached_in_micros=row.price_cached_in_micros,
            price_cache_write_micros=row.price_cache_write_micros,
            price_reasoning_micros=row.price_reasoning_micros,
            fallbacks=configured_fallbacks(extra),
            weight=weight,
            priority=priority,
            limits=model_limits(row.name, extra),
        )
        others = tuple(
            d for d in (self._deployment(model, stored) for stored in stored_deployments(extra)) if d
        )
        if not others:
            return model
        return replace(model, deployment_id=f"{row.name}/{DEFAULT_LABEL}", deployments=others)

    def _deployment(self, model: CatalogEntry, stored: dict[str, Any]) -> CatalogEntry | None:
        """One of config.deployments: the model's entry on another upstream (None: unusable)."""
        label = stored["name"]
        provider, base_url, upstream_model = (
            stored.get("provider"), stored.get("base_url"), stored.get("model")
        )  # fmt: skip
        if not (isinstance(provider, str) and isinstance(base_url, str) and isinstance(upstream_model, str)):
            log.error("model %s: deployment %s malformed, left out", model.name, label)
            return None
        api_key = None
        if stored.get("api_key_encrypted"):
            try:
                api_key = self._box.decrypt(stored["api_key_encrypted"])
            except ValueError:
                log.error("model %s: deployment %s's secret unreadable, left out", model.name, label)
                return None
        weight, priority = stored_weight_and_priority(stored)
        return replace(
            model,
            provider=provider,
            chat_url=f"{base_url}/chat/completions",
            upstream_model=upstream_model,
            api_key=api_key,
            client=self._pool.get(base_url),
            lean=self._lean(provider, base_url),
            fallbacks=(),
            deployment_id=f"{model.name}/{label}",
            weight=weight,
            priority=priority,
        )

    def _lean(self, provider: str, base_url: str) -> Http1Pool | None:
        return self._pool.lean(base_url) if provider_for(provider).lean else None


def configured_fallbacks(extra_config: dict[str, Any] | None) -> tuple[str, ...]:
    """`config.fallbacks` as saved (catalog/service.py checked it): kept in the JSONB extra config."""
    value = (extra_config or {}).get("fallbacks")
    return tuple(v for v in value if isinstance(v, str) and v) if isinstance(value, list) else ()


def model_limits(name: str, extra_config: dict[str, Any] | None) -> tuple[Limit, ...]:
    """`config.rpm` / `tpm` / `tpd` as saved (catalog/service.py checked them): the model's own."""
    extra = extra_config or {}
    numbers = [extra.get(measure) for measure in LIMIT_MEASURES]
    rpm, tpm, tpd = (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None for n in numbers)
    return tuple(Tier("", rpm, tpm, tpd).limits(Scope.MODEL, name))
