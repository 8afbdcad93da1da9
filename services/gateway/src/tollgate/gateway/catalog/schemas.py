"""Request/response shapes of the admin model routes (the Bedrock-style gateway) and /v1/models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class ModelSaveIn(BaseModel):
    id: int | None = None
    name: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=64)
    # The Bedrock-style gateway sends a JSON *string*; an object is accepted too.
    config: str | dict[str, Any]
    price_in: Decimal = Field(default=Decimal(0), ge=0)
    price_out: Decimal = Field(default=Decimal(0), ge=0)
    # Pricing modes beyond the Bedrock-style gateway's per-token prices (credits; see docs/billing.md
    # "Pricing modes"):
    price_request: Decimal = Field(default=Decimal(0), ge=0)  # flat, per request (credit chat's price)
    price_image: Decimal = Field(default=Decimal(0), ge=0)  # per image generated
    price_embedding: Decimal | None = Field(default=None, ge=0)  # per 1M embedded tokens; null: price_in
    # Token classes (docs/billing.md "Token classes"), per 1M tokens; null: the input price for cached
    # and cache-write tokens, the output price for reasoning tokens.
    price_cached_in: Decimal | None = Field(default=None, ge=0)
    price_cache_write: Decimal | None = Field(default=None, ge=0)
    price_reasoning: Decimal | None = Field(default=None, ge=0)
    group_id: int = 0
    multiple: bool = False


class ModelDeleteIn(BaseModel):
    id: int


class DeploymentOut(BaseModel):
    """One of a model's extra deployments (config.deployments), without its secret."""

    name: str
    provider: str
    base_url: str
    model: str
    weight: int
    priority: int
    has_api_key: bool
    region: str | None = None  # bedrock-converse: the region its credentials sign for, when saved with one


class ModelOut(BaseModel):
    """What admins see of a model: never the provider secret, only whether one is set."""

    id: int
    name: str
    provider: str
    price_in: float
    price_out: float
    price_request: float
    price_image: float
    price_embedding: float | None
    price_cached_in: float | None
    price_cache_write: float | None
    price_reasoning: float | None
    group_id: int
    multiple: bool
    base_url: str
    model: str
    has_api_key: bool
    max_tokens_default: int
    fallbacks: list[str] = []  # config.fallbacks: models tried in order when this one fails
    # config.rpm / tpm / tpd: the model's own rate limits across keys (docs/limits.md); null: none
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    # The top-level upstream is the model's first deployment ("default"); config.deployments the others.
    weight: int = 1
    priority: int = 0
    deployments: list[DeploymentOut] = []
    # Every non-secret key of the model's config, in the form save takes back (catalog/saved_config.py):
    # save replaces the whole config, so an editor sends this back with its changes.
    config: dict[str, Any] = {}
    created_at: datetime
    updated_at: datetime


class ModelListOut(BaseModel):
    data: list[ModelOut]
    total: int
    limit: int
    offset: int
