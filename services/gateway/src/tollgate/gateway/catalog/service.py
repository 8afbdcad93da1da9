"""Catalog rules: provider config parsing, secret handling, save/delete/list. Never commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import orjson

from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.common.money import credits_to_micros, micros_to_credits
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.schemas import ModelOut, ModelSaveIn
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import configured_fallbacks
from tollgate.gateway.providers.registry import PROVIDERS

SUPPORTED_PROVIDERS = frozenset(PROVIDERS)
_API_KEY_FIELDS = ("api_key", "apiKey")
_MODEL_FIELDS = ("model", "modelId", "upstream_model")


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    upstream_model: str
    api_key: str | None
    api_key_given: bool  # an update without api_key keeps the stored secret
    max_tokens_default: int
    extra: dict[str, Any] = field(default_factory=dict)


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
    if provider == "bedrock-converse":
        _bedrock_config(data)
    base_url = data.pop("base_url", None) or data.pop("baseUrl", None)
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise InvalidRequest("config.base_url must be an http(s) URL.", param="config.base_url")
    upstream_model: Any = model_name
    for key in _MODEL_FIELDS:
        if key in data:
            upstream_model = data.pop(key)
    if not isinstance(upstream_model, str) or not upstream_model:
        raise InvalidRequest("config.model must be a non-empty string.", param="config.model")
    api_key: Any = None
    api_key_given = False
    for key in _API_KEY_FIELDS:
        if key in data:
            api_key, api_key_given = data.pop(key), True
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidRequest("config.api_key must be a string.", param="config.api_key")
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
    return ProviderConfig(
        base_url=base_url.rstrip("/"),
        upstream_model=upstream_model,
        api_key=api_key or None,
        api_key_given=api_key_given,
        max_tokens_default=max_tokens,
        extra=data,
    )


_BEDROCK_SECRETS = ("accessKeyId", "secretAccessKey", "sessionToken")


def _bedrock_config(data: dict[str, Any]) -> None:
    """Bedrock's config (`modelId`, `region`, credentials, an optional `endpoint`) in the catalog's
    terms: base_url is the endpoint (or the region's bedrock-runtime host), and the credentials
    with the region travel as one encrypted secret (api_key, a JSON object) never returned."""
    region = data.get("region") or "us-east-1"
    if not isinstance(region, str) or not region.replace("-", "").isalnum():
        raise InvalidRequest("config.region must be an AWS region name.", param="config.region")
    endpoint = data.pop("endpoint", None)
    if endpoint is not None and not isinstance(endpoint, str):
        raise InvalidRequest("config.endpoint must be an http(s) URL.", param="config.endpoint")
    data.setdefault("base_url", endpoint or f"https://bedrock-runtime.{region}.amazonaws.com")
    secrets = {key: data.pop(key) for key in _BEDROCK_SECRETS if key in data}
    for key, value in secrets.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"config.{key} must be a string.", param=f"config.{key}")
    if secrets:
        data["api_key"] = orjson.dumps({"region": region, **secrets}).decode()


def _credits(micros: int | None) -> float | None:
    return None if micros is None else micros_to_credits(micros)


def _micros(credits: Decimal | None) -> int | None:
    return None if credits is None else credits_to_micros(credits)


def to_out(model: Model) -> ModelOut:
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
        created_at=model.created_at,
        updated_at=model.updated_at,
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
        model_id = data.id
        if model_id is None:
            # Without an id, save registers or updates by name (what `make run` and operators re-run).
            same_name = await self.repo.get_live_by_name(name)
            model_id = same_name.id if same_name is not None else None
        elif await self.repo.name_taken(name, model_id):
            raise InvalidRequest(
                f"A model named {name!r} already exists.", param="name", code="duplicate_name"
            )
        values: dict[str, Any] = {
            "name": name,
            "provider": provider,
            "base_url": config.base_url,
            "upstream_model": config.upstream_model,
            "extra_config": config.extra,
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
        if model_id is None or config.api_key_given:
            values["api_key_encrypted"] = self.box.encrypt(config.api_key) if config.api_key else None
        if model_id is None:
            return await self.repo.add(**values)
        existing = await self.repo.get_live(model_id)
        if existing is None:
            raise NotFound(f"Model {model_id} does not exist.", param="id", code="model_not_found")
        return await self.repo.update(existing, **values)

    async def delete(self, model_id: int) -> None:
        if not await self.repo.soft_delete(model_id):
            raise NotFound(f"Model {model_id} does not exist.", param="id", code="model_not_found")

    async def list_models(self, q: str | None, limit: int, offset: int) -> tuple[list[Model], int]:
        return await self.repo.list_live(q, limit, offset)
