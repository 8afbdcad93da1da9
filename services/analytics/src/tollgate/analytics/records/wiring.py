"""Chat records' pieces for the composition root: the content box, the error renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.records.crypto import DEV_SECRET_KEY, PREVIOUS_SETTING, SETTING, ContentBox
from tollgate.common.errors import TollgateError
from tollgate.common.http import default_error_renderer
from tollgate.common.keyring import Keyring, rotating_secrets
from tollgate.common.secret_policy import Secret

# seed 004's routes answer errors in OpenAI's envelope, as /admin/api-key/* does
SEED_004_PREFIXES = ("/admin/session/", "/admin/thread/", "/user/")

Renderer = Callable[[Request, TollgateError], dict[str, Any]]


def records_error_renderer(fallback: Renderer) -> Renderer:
    def render(request: Request, exc: TollgateError) -> dict[str, Any]:
        if request.url.path.startswith(SEED_004_PREFIXES):
            return default_error_renderer(request, exc)
        return fallback(request, exc)

    return render


def content_box(settings: AnalyticsSettings) -> ContentBox:
    return ContentBox(
        Keyring.from_settings(
            settings.secret_key.get_secret_value(), settings.previous_secret_keys.get_secret_value()
        )
    )


def content_box_policy(settings: AnalyticsSettings) -> list[Secret]:
    return rotating_secrets(
        SETTING,
        settings.secret_key.get_secret_value(),
        PREVIOUS_SETTING,
        settings.previous_secret_keys.get_secret_value(),
        DEV_SECRET_KEY,
    )
