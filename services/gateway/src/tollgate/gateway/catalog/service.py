"""Catalog rules: provider config parsing, secret handling, save/delete/list. Never commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.common.money import credits_to_micros, micros_to_credits
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.saved_config import refuse_plain_secrets, rekeyed_bedrock_secret, saved_config
from tollgate.gateway.catalog.schemas import DeploymentOut, ModelOut, ModelSaveIn
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import configured_fallbacks
from tollgate.gateway.catalog.upstreams import (
    BEDROCK,
    DeploymentConfig,
    check_weight_and_priority,
    parse_deployments,
    parse_upstream,
    stored_deployments,
    stored_weight_and_priority,
)
from tollgate.gateway.limits.specs import LIMIT_MEASURES
from tollgate.gateway.providers.registry import PROVIDERS

SUPPORTED_PROVIDERS = frozenset(PROVIDERS)


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    upstream_model: str
    api_key: str | None
    api_key_given: bool  # an update without api_key keeps the stored secret
    max_tokens_default: int
    extra: dict[str, Any] = field(default_factory=dict)
    deployments: list[DeploymentConfig] = field(default_factory=list)  # config.deployments (upstreams.py)


def parse_config(
    raw: str | dict[str, Any], model_name: str, default_max_tokens: int, provider: str = "openai-compatible"
) -> ProviderConfig:
    if isinstance(raw, str):
        try:
            data = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("config must be a JSON object (as a string).", param="config") from exc
    else:
        data = dict(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("config must be a JSON object.", param="config")
    deployments_given = data.pop("deployments", None)
    upstream = parse_upstream(data, provider, model_name, "config")
    max_tokens = data.pop("max_tokens", default_max_tokens)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        raise InvalidRequest("config.max_tokens must be a positive integer.", param="config.max_tokens")
    fallbacks = data.get("fallbacks")  # routing: stays in the extra config (JSONB), no column
    if fallbacks is not None:
        if not isinstance(fallbacks, list) or not all(isinstance(f, str) and f.strip() for f in fallbacks):
            raise InvalidRequest(
                "config.fallbacks must be an array of model names.", param="config.fallbacks"
            )
        if model_name in fallbacks:
            raise InvalidRequest("A model cannot be its own fallback.", param="config.fallbacks")
        data["fallbacks"] = [f.strip() for f in fallbacks]
    check_weight_and_priority(data, "config")  # the top-level deployment's: kept in the extra config
    for measure in LIMIT_MEASURES:  # the model's own rate limits, across keys (docs/limits.md)
        value = data.get(measure)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidRequest(
                f"config.{measure} must be a positive integer (or null: not limited).",
                param=f"config.{measure}",
            )
    deployments = parse_deployments(deployments_given, provider, upstream.upstream_model)
    return ProviderConfig(
        base_url=upstream.base_url,
        upstream_model=upstream.upstream_model,
        api_key=upstream.api_key,
        api_key_given=upstream.api_key_given,
        max_tokens_default=max_tokens,
        extra=data,
        deployments=deployments,
    )


def stored_form(
    deployments: list[DeploymentConfig], box: SecretBox, existing: Model | None
) -> list[dict[str, Any]]:
    """config.deployments as kept in the extra config: each key encrypted like the model's; a
    deployment saved again under its label without api_key (or Bedrock credentials) keeps its
    stored secret."""
    stored = stored_deployments(existing.extra_config if existing is not None else None)
    kept = {d["name"]: d.get("api_key_encrypted") for d in stored}
    out = []
    for d in deployments:
        u = d.upstream
        if u.api_key_given or d.label not in kept:
            secret = box.encrypt(u.api_key) if u.api_key else None
        else:
            secret = kept[d.label]
            if secret and d.region is not None:  # only Bedrock deployments carry one
                # a region sent without the credentials: the kept credentials sign for the new region
                secret = rekeyed_token(box, secret, d.region) or secret
        entry = {
            "name": d.label,
            "provider": d.provider,
            "base_url": u.base_url,
            "model": u.upstream_model,
            "weight": d.weight,
            "priority": d.priority,
            "api_key_encrypted": secret,
        }
        if d.region is not None:
            entry["region"] = d.region
        out.append(entry)
    return out


def rekeyed_token(box: SecretBox, token: str, region: str) -> str | None:
    """A stored Bedrock credential token re-signed for `region` (None: already so, not a bundle, or
    unreadable after a key rotation gone wrong: then it is left as it is, as the snapshot does)."""
    try:
        bundle = rekeyed_bedrock_secret(box.decrypt(token), region)
    except ValueError:
        return None
    return None if bundle is None else box.encrypt(bundle)


def _credits(micros: int | None) -> float | None:
    return None if micros is None else micros_to_credits(micros)


def _micros(credits: Decimal | None) -> int | None:
    return None if credits is None else credits_to_micros(credits)


def to_out(model: Model) -> ModelOut:
    weight, priority = stored_weight_and_priority(model.extra_config or {})
    return ModelOut(
        id=model.id,
        name=model.name,
        provider=model.provider,
        price_in=micros_to_credits(model.price_in_micros),
        price_out=micros_to_credits(model.price_out_micros),
        price_request=micros_to_credits(model.price_request_micros),
        price_image=micros_to_credits(model.price_image_micros),
        price_embedding=_credits(model.price_embedding_micros),
        price_cached_in=_credits(model.price_cached_in_micros),
        price_cache_write=_credits(model.price_cache_write_micros),
        price_reasoning=_credits(model.price_reasoning_micros),
        group_id=model.group_id,
        multiple=model.multiple,
        base_url=model.base_url,
        model=model.upstream_model,
        has_api_key=model.api_key_encrypted is not None,
        max_tokens_default=model.max_tokens_default,
        fallbacks=list(configured_fallbacks(model.extra_config)),
        **_limits_out(model.extra_config or {}),
        weight=weight,
        priority=priority,
        deployments=[_deployment_out(d) for d in stored_deployments(model.extra_config)],
        config=saved_config(model),
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def _limits_out(extra: dict[str, Any]) -> dict[str, int | None]:
    """config.rpm / tpm / tpd as saved (parse_config checked them), so an editor can keep them."""
    out: dict[str, int | None] = {}
    for measure in LIMIT_MEASURES:
        value = extra.get(measure)
        out[measure] = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
    return out


def _deployment_out(stored: dict[str, Any]) -> DeploymentOut:
    """What admins see of a deployment: never its secret, only whether one is set."""
    weight, priority = stored_weight_and_priority(stored)
    return DeploymentOut(
        name=stored["name"],
        provider=str(stored.get("provider", "")),
        base_url=str(stored.get("base_url", "")),
        model=str(stored.get("model", "")),
        weight=weight,
        priority=priority,
        has_api_key=bool(stored.get("api_key_encrypted")),
        region=stored["region"] if isinstance(stored.get("region"), str) else None,
    )


class CatalogService:
    def __init__(self, repo: ModelRepository, box: SecretBox, default_max_tokens: int) -> None:
        self.repo = repo
        self.box = box
        self.default_max_tokens = default_max_tokens

    async def save(self, data: ModelSaveIn) -> Model:
        provider = data.provider.strip().lower()
        if provider not in SUPPORTED_PROVIDERS:
            supported = ", ".join(sorted(SUPPORTED_PROVIDERS))
            raise InvalidRequest(
                f"Unknown provider {data.provider!r}; supported: {supported}.", param="provider"
            )
        name = data.name.strip()
        if not name:
            raise InvalidRequest("name must not be blank.", param="name")
        config = parse_config(data.config, name, self.default_max_tokens, provider)
        refuse_plain_secrets(config.extra)
        model_id = data.id
        if model_id is None:
            # Without an id, save registers or updates by name (what `make run` and operators re-run).
            existing = await self.repo.get_live_by_name(name)
        else:
            if await self.repo.name_taken(name, model_id):
                raise InvalidRequest(
                    f"A model named {name!r} already exists.", param="name", code="duplicate_name"
                )
            existing = await self.repo.get_live(model_id)
            if existing is None:
                raise NotFound(f"Model {model_id} does not exist.", param="id", code="model_not_found")
        extra = dict(config.extra)
        if config.deployments:
            extra["deployments"] = stored_form(config.deployments, self.box, existing)
        values: dict[str, Any] = {
            "name": name,
            "provider": provider,
            "base_url": config.base_url,
            "upstream_model": config.upstream_model,
            "extra_config": extra,
            "price_in_micros": credits_to_micros(data.price_in),
            "price_out_micros": credits_to_micros(data.price_out),
            "price_request_micros": credits_to_micros(data.price_request),
            "price_image_micros": credits_to_micros(data.price_image),
            "price_embedding_micros": _micros(data.price_embedding),
            "price_cached_in_micros": _micros(data.price_cached_in),
            "price_cache_write_micros": _micros(data.price_cache_write),
            "price_reasoning_micros": _micros(data.price_reasoning),
            "group_id": data.group_id,
            "multiple": data.multiple,
            "max_tokens_default": config.max_tokens_default,
        }
        if existing is None or config.api_key_given:
            values["api_key_encrypted"] = self.box.encrypt(config.api_key) if config.api_key else None
        elif provider == BEDROCK and isinstance(extra.get("region"), str):
            # a region sent without the credentials: the kept credentials sign for the new region
            rekeyed = self._rekeyed(existing, extra["region"])
            if rekeyed is not None:
                values["api_key_encrypted"] = rekeyed
        if existing is None:
            return await self.repo.add(**values)
        return await self.repo.update(existing, **values)

    def _rekeyed(self, existing: Model, region: str) -> str | None:
        if not existing.api_key_encrypted:
            return None
        return rekeyed_token(self.box, existing.api_key_encrypted, region)

    async def delete(self, model_id: int) -> None:
        if not await self.repo.soft_delete(model_id):
            raise NotFound(f"Model {model_id} does not exist.", param="id", code="model_not_found")

    async def list_models(self, q: str | None, limit: int, offset: int) -> tuple[list[Model], int]:
        return await self.repo.list_live(q, limit, offset)
