"""Builds the training FastAPI app (only /healthz and /metrics for now)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tollgate.common.http import create_app


def build_app(
    registry: CollectorRegistry, health_check: Callable[[], Awaitable[dict[str, Any]]] | None = None
) -> FastAPI:
    return create_app("training", registry, health_check=health_check)
