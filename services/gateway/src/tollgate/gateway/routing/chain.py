"""A request's chain of models, pure: the model first, then its fallbacks; who may use them; the hold.

Fallbacks come from the request (LiteLLM's `fallbacks`: model names; OpenRouter's `models`: an
ordered list whose first entry may be the model itself), else from the model's catalog config
(`config.fallbacks`). The request's list replaces the model's. A model named by the request must
exist and be granted to the key (400 / 403 naming it, before any hold); a configured fallback that
is gone, not granted to this key or unable to serve the operation is left out of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.principals.grants import ensure_model_allowed, may_call
from tollgate.gateway.providers.base import Provider, UpstreamRequest

DEPLOYMENT_HEADER = "x-tollgate-deployment"  # on every answer: the catalog model that served it
MAX_FALLBACKS = 8  # per request: each may cost an upstream call inside one deadline


class Lookup(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...


class Link(NamedTuple):
    """One model of the chain with its upstream request, built before the hold."""

    entry: CatalogEntry
    provider: Provider
    request: UpstreamRequest


def take_fallbacks(payload: dict[str, Any], model: str) -> list[str] | None:
    """Removes `fallbacks` / `models` from the upstream body; the model names they add (None: none)."""
    names: list[str] = []
    for field in ("models", "fallbacks"):
        value = payload.pop(field, None)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidRequest(f"'{field}' must be an array of model names.", param=field)
        names += value
    unique = [name for i, name in enumerate(names) if name != model and name not in names[:i]]
    if len(unique) > MAX_FALLBACKS:
        raise InvalidRequest(f"At most {MAX_FALLBACKS} fallback models per request.", param="fallbacks")
    return unique or None


def chain_of(
    primary: CatalogEntry,
    requested: list[str] | None,
    catalog: Lookup,
    principal: Principal,
    serves: Callable[[CatalogEntry], bool],
) -> list[CatalogEntry] | None:
    """The models to try in order, the primary first; None when it has no fallbacks (the fast path)."""
    if requested is not None:
        chain = [primary]
        for name in requested:
            entry = catalog.get(name)
            if entry is None:
                raise InvalidRequest(
                    f"The fallback model '{name}' does not exist.", param="fallbacks", code="model_not_found"
                )
            ensure_model_allowed(principal, entry.name)  # 403 naming it, before any hold
            if not serves(entry):
                raise InvalidRequest(
                    f"The fallback model '{name}' does not serve this operation.",
                    param="fallbacks",
                    code="unsupported_operation",
                )
            chain.append(entry)
        return chain
    if not primary.fallbacks:
        return None
    chain = [primary]
    for name in primary.fallbacks:
        entry = catalog.get(name)
        if entry is None or any(e.name == entry.name for e in chain):
            continue
        if may_call(principal, entry.name) and serves(entry):
            chain.append(entry)
    return chain if len(chain) > 1 else None


def chain_hold(entries: Sequence[CatalogEntry], price: Callable[[CatalogEntry], int]) -> int:
    """One hold for the whole request: the bound priced with each model, the dearest of them."""
    return max(price(entry) for entry in entries)
