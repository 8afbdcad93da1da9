"""Request/response shapes of the Feishu bot admin routes (the Bedrock-style gateway's
`/admin/bot/feishu/*`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# The bot's settings, named as the Bedrock-style gateway's `config` names them; the last two are
# Feishu's event-subscription security settings (console: Events & Callbacks > Encryption Strategy).
CONFIG_FIELDS = ("appId", "apiKey", "modelId", "appSecret", "encryptKey", "verificationToken")
SECRET_FIELDS = ("apiKey", "appSecret", "encryptKey", "verificationToken")


class BotSaveIn(BaseModel):
    """Create: `name`, `config` (a JSON string, as the seed sends it, or an object) and `provider`.
    Update: `id`, or no id and the `appId` of an existing bot of the organisation; only the fields
    given change (secrets left out keep their stored value). The config fields may also be sent at
    the top level, as the seed's update example does; they win over the same field in `config`."""

    id: int | None = None
    name: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    config: str | dict[str, Any] | None = None
    appId: str | None = None
    apiKey: str | None = None
    modelId: str | None = None
    appSecret: str | None = None
    encryptKey: str | None = None
    verificationToken: str | None = None


class BotDeleteIn(BaseModel):
    id: int


class BotConfigOut(BaseModel):
    """The bot's config as admins see it: secrets masked, never returned."""

    appId: str
    modelId: str
    apiKey: str  # the key's first characters and a mask
    appSecret: str
    encryptKey: str | None
    verificationToken: str | None


class BotOut(BaseModel):
    id: int
    name: str
    provider: str
    config: BotConfigOut
    event_url: str  # where Feishu pushes this bot's events (the console's Request URL, on this host)
    created_at: datetime
    updated_at: datetime


class BotListOut(BaseModel):
    data: list[BotOut]
    total: int
    limit: int
    offset: int
