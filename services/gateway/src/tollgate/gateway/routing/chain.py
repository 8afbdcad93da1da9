"""A request's chain of deployments, pure: the model's first, then its fallbacks'; who may use them;
the hold.

Fallbacks come from the request (LiteLLM's `fallbacks`: model names; OpenRouter's `models`: an
ordered list whose first entry may be the model itself), else from the model's catalog config
(`config.fallbacks`). The request's list replaces the model's. A model named by the request must
exist and be granted to the key (400 / 403 naming it, before any hold); a configured fallback that
is gone, not granted to this key or unable to serve the operation is left out of the chain.

Each model of the chain contributes its deployments (catalog/upstreams.py): lowest priority first,
and within one priority a weighted random order (LiteLLM's "simple-shuffle" extended to the whole
order: the first is drawn with probability weight / total, the next among the rest, and so on), so
a lower-priority deployment is tried only when every higher one failed or cools down (the Router
skips cooling ones, and the order among those left keeps the weights' proportions). A deployment
whose provider does not serve the operation is left out.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.principals.grants import ensure_model_allowed, may_call
from tollgate.gateway.providers.base import Provider, UpstreamRequest

DEPLOYMENT_HEADER = "x-tollgate-deployment"  # on every answer: the deployment that served it
MAX_FALLBACKS = 8  # per request: each may cost an upstream call inside one deadline


class Lookup(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...


Draw = Callable[[], float]  # a random number in [0, 1): random.random, or a seeded Random's in tests


class Link(NamedTuple):
    """One deployment of the chain with its upstream request, built before the hold."""

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
    *,
    draw: Draw = random.random,
) -> list[CatalogEntry] | None:
    """The deployments to try in order, the primary model's first; None when there is only the one
    (the fast path). The first entry is not always `primary`: build a link for every entry."""
    models = [primary]
    if requested is not None:
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
            models.append(entry)
    else:
        for name in primary.fallbacks:
            entry = catalog.get(name)
            if entry is None or any(e.name == entry.name for e in models):
                continue
            if may_call(principal, entry.name) and serves(entry):
                models.append(entry)
    chain = [d for model in models for d in deployments_in_order(model, serves, draw)]
    return chain if len(chain) > 1 or requested is not None else None


def deployments_in_order(
    model: CatalogEntry, serves: Callable[[CatalogEntry], bool], draw: Draw
) -> list[CatalogEntry]:
    """A model's deployments for one request: by priority, weighted random within a priority."""
    if not model.deployments:
        return [model]
    usable = [d for d in (model, *model.deployments) if d is model or serves(d)]
    by_priority: dict[int, list[CatalogEntry]] = {}
    for d in usable:
        by_priority.setdefault(d.priority, []).append(d)
    return [d for priority in sorted(by_priority) for d in weighted_order(by_priority[priority], draw)]


def weighted_order(entries: list[CatalogEntry], draw: Draw) -> list[CatalogEntry]:
    """A random order in which each next entry is drawn with probability weight / (weights left)."""
    left = list(entries)
    out = []
    while len(left) > 1:
        point = draw() * sum(e.weight for e in left)
        for i, e in enumerate(left):
            point -= e.weight
            if point < 0 or i == len(left) - 1:
                out.append(left.pop(i))
                break
    return out + left


def chain_hold(entries: Sequence[CatalogEntry], price: Callable[[CatalogEntry], int]) -> int:
    """One hold for the whole request: the bound priced with each model, the dearest of them."""
    return max(price(entry) for entry in entries)
