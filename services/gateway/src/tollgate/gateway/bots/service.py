"""Bot rules for the admin routes: config parsing, key and model checks, secrets encrypted, masked
views. Never commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest, NotFound, Unauthenticated
from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots.models import FeishuBot
from tollgate.gateway.bots.repository import BotRepository
from tollgate.gateway.bots.schemas import CONFIG_FIELDS, BotConfigOut, BotOut, BotSaveIn

MASK = "****"
KeyResolver = Callable[[str], Awaitable[Principal]]
ModelKnown = Callable[[str], bool]


def event_path(bot_id: int) -> str:
    return f"/bot/feishu/{bot_id}/events"


def to_out(bot: FeishuBot) -> BotOut:
    return BotOut(
        id=bot.id,
        name=bot.name,
        provider=bot.provider,
        config=BotConfigOut(
            appId=bot.app_id,
            modelId=bot.model_id,
            apiKey=bot.api_key_hint + MASK,
            appSecret=MASK,
            encryptKey=MASK if bot.encrypt_key_encrypted else None,
            verificationToken=MASK if bot.verification_token_encrypted else None,
        ),
        event_url=event_path(bot.id),
        created_at=bot.created_at,
        updated_at=bot.updated_at,
    )


def merged_config(body: BotSaveIn) -> dict[str, str | None]:
    """`config` (JSON string or object) overlaid with the same fields given at the top level."""
    raw = body.config
    data: Any
    if raw is None:
        data = {}
    elif isinstance(raw, str):
        try:
            data = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("config must be a JSON object (as a string).", param="config") from exc
    else:
        data = dict(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("config must be a JSON object.", param="config")
    unknown = sorted(set(data) - set(CONFIG_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"Unknown config field(s): {', '.join(unknown)}; known: {', '.join(CONFIG_FIELDS)}.",
            param="config",
        )
    out: dict[str, str | None] = {}
    for name in CONFIG_FIELDS:
        value = getattr(body, name)
        if value is None:
            value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"config.{name} must be a string.", param=f"config.{name}")
        out[name] = value.strip()
    return out


class BotService:
    def __init__(
        self, repo: BotRepository, box: SecretBox, resolve_key: KeyResolver, model_known: ModelKnown
    ) -> None:
        self.repo = repo
        self.box = box
        self.resolve_key = resolve_key
        self.model_known = model_known

    async def save(self, org_id: str, body: BotSaveIn) -> FeishuBot:
        config = merged_config(body)
        existing: FeishuBot | None = None
        if body.id is not None:
            existing = await self.repo.get_live(body.id, org_id)
            if existing is None:
                raise NotFound(f"Bot {body.id} does not exist.", param="id", code="bot_not_found")
        elif config.get("appId"):
            existing = await self.repo.get_live_by_app(org_id, str(config["appId"]))
        values: dict[str, Any] = {}
        name = body.name.strip() if body.name is not None else None
        if name is not None or existing is None:
            if not name:
                raise InvalidRequest("name is required.", param="name")
            values["name"] = name
        if body.provider is not None or existing is None:
            values["provider"] = (body.provider or "").strip()
        for field, column in (("appId", "app_id"), ("modelId", "model_id")):
            value = config.get(field)
            if value is None and existing is not None:
                continue
            if not value:
                raise InvalidRequest(f"config.{field} is required.", param=f"config.{field}")
            values[column] = value
        app_id = values.get("app_id")
        if app_id and await self.repo.app_taken(org_id, app_id, existing.id if existing else None):
            raise InvalidRequest(
                f"Another bot of this organisation already uses app {app_id!r}.",
                param="config.appId",
                code="duplicate_app",
            )
        await self._secrets(org_id, config, existing, values)
        model = values.get("model_id") or (existing.model_id if existing else "")
        if not self.model_known(model):
            raise InvalidRequest(f"Unknown model {model!r}.", param="config.modelId", code="model_not_found")
        if existing is None:
            return await self.repo.add(org_id=org_id, **values)
        return await self.repo.update(existing, **values)

    async def _secrets(
        self, org_id: str, config: dict[str, str | None], existing: FeishuBot | None, values: dict[str, Any]
    ) -> None:
        api_key = config.get("apiKey")
        if api_key is not None or existing is None:
            if not api_key:
                raise InvalidRequest("config.apiKey (a Tollgate API key) is required.", param="config.apiKey")
            try:
                principal = await self.resolve_key(api_key)
            except Unauthenticated as exc:
                raise InvalidRequest(
                    "config.apiKey is not a valid API key.", param="config.apiKey", code="invalid_bot_key"
                ) from exc
            if principal.org_id != org_id:
                raise InvalidRequest(
                    "config.apiKey must be a key of this organisation (the bot's answers are billed to it).",
                    param="config.apiKey",
                    code="invalid_bot_key",
                )
            model = config.get("modelId") or (existing.model_id if existing else "")
            if model and not principal.may_use(model):
                raise InvalidRequest(
                    f"config.apiKey may not call model {model!r}.",
                    param="config.apiKey",
                    code="model_not_granted",
                )
            values["api_key_encrypted"] = self.box.encrypt(api_key)
            values["api_key_hint"] = api_key[:6]
        app_secret = config.get("appSecret")
        if app_secret is not None or existing is None:
            if not app_secret:
                raise InvalidRequest("config.appSecret is required.", param="config.appSecret")
            values["app_secret_encrypted"] = self.box.encrypt(app_secret)
        # optional: an empty string removes them
        for field, column in (
            ("encryptKey", "encrypt_key_encrypted"),
            ("verificationToken", "verification_token_encrypted"),
        ):
            if field in config:
                value = config[field]
                values[column] = self.box.encrypt(value) if value else None

    async def delete(self, org_id: str, bot_id: int) -> None:
        if not await self.repo.soft_delete(bot_id, org_id):
            raise NotFound(f"Bot {bot_id} does not exist.", param="id", code="bot_not_found")

    async def list_bots(
        self, org_id: str, q: str | None, limit: int, offset: int
    ) -> tuple[list[FeishuBot], int]:
        return await self.repo.list_live(org_id, q, limit, offset)
