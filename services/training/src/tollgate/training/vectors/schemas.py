"""Request and response bodies of vector collections and SloughGPT's `POST /search/vector`."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollgate.training.vectors.models import VectorCollection

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
MAX_DIMENSION = 4096
MAX_BATCH = 1000
MAX_TOP_K = 1000
MAX_METADATA_BYTES = 16 * 1024


def _finite(values: list[float]) -> list[float]:
    if not all(math.isfinite(v) for v in values):
        raise ValueError("values must be finite numbers")
    if not any(values):
        raise ValueError("a vector of zeros has no direction")
    return values


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    dimension: int = Field(ge=1, le=MAX_DIMENSION)
    metric: Literal["cosine"] = "cosine"
    description: str | None = Field(default=None, max_length=1024)


class VectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    values: list[float] = Field(min_length=1, max_length=MAX_DIMENSION)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _check_values = field_validator("values")(_finite)


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vectors: list[VectorIn] = Field(min_length=1, max_length=MAX_BATCH)


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)


class SearchRequest(BaseModel):
    """SloughGPT's search. `text` is embedded by the gateway (billed) into `query_vector` before it
    reaches this service; `filters` are parsed by vectors/filters.py."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(pattern=NAME_PATTERN)
    query_vector: list[float] = Field(min_length=1, max_length=MAX_DIMENSION)
    top_k: int = Field(default=10, ge=1, le=MAX_TOP_K)
    similarity_threshold: float = Field(default=-1.0, ge=-1.0, le=1.0)
    filters: dict[str, Any] | None = None
    include_values: bool = False
    include_metadata: bool = True

    _check_values = field_validator("query_vector")(_finite)


def collection_body(collection: VectorCollection) -> dict[str, Any]:
    return {
        "id": collection.id,
        "name": collection.name,
        "dimension": collection.dimension,
        "metric": collection.metric,
        "vector_count": collection.vector_count,
        "description": collection.description,
        "created_at": collection.created_at.isoformat().replace("+00:00", "Z"),
    }
