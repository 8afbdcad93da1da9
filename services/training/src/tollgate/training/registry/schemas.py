"""SloughGPT's model registry shapes (/models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tollgate.common.money import micros_to_credits
from tollgate.training.registry.models import RegistryModel


class ModelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    type: str = Field(default="language_model", max_length=32)
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=2000)
    # credits per 1M trained tokens; base models only (platform admins)
    pricing: dict[str, float] | None = None


def _size(size_bytes: int | None) -> str | None:
    if size_bytes is None:
        return None
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f}{unit}"
    return f"{size_bytes}B"


def model_summary(m: RegistryModel) -> dict[str, Any]:
    """A list item: SloughGPT's fields plus where the model comes from and how it is served."""
    out: dict[str, Any] = {
        "id": m.id,
        "name": m.name,
        "type": m.type,
        "status": m.status,
        "created_at": m.created_at.isoformat(),
        "size": _size(m.size_bytes),
        "accuracy": m.metrics.get("accuracy"),
        "owned_by": m.org_id or "system",
        "base_model_id": m.base_model_id,
        "fine_tuned_model": m.served_name,
        "job_id": m.job_id,
    }
    if m.org_id is None:
        out["pricing"] = {"training": micros_to_credits(m.price_training_micros)}
    return out


def model_detail(m: RegistryModel) -> dict[str, Any]:
    config = {k: v for k, v in m.config.items() if k != "source"}  # a server path stays internal
    return {
        **model_summary(m),
        "config": config,
        "metrics": m.metrics,
        "description": m.description,
        "updated_at": m.updated_at.isoformat(),
    }
