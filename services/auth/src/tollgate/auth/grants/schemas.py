"""Request and response bodies of the model authorisation routes (the Bedrock-style gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tollgate.auth.groups.schemas import GroupId

KeyId = Annotated[int, Field(strict=True, ge=1, le=9_223_372_036_854_775_807)]
# The catalog's public model name (the gateway's /admin/model/save `name`, at most 200 characters).
ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, strict=True)
]
ModelNames = Annotated[list[ModelName], Field(min_length=1, max_length=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupModelsRequest(_Body):
    group_id: GroupId
    models: ModelNames


class KeyModelsRequest(_Body):
    key_id: KeyId
    models: ModelNames


class GroupModelsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    group_id: Annotated[int, Field(ge=1, le=2_147_483_647)]


class KeyModelsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key_id: Annotated[int, Field(ge=1, le=9_223_372_036_854_775_807)]


class GrantInfo(BaseModel):
    model: str
    created_at: datetime


class GroupModels(BaseModel):
    """The group's grants after the call; `changed` lists what this call added or removed."""

    group_id: int
    data: list[GrantInfo]
    changed: list[str] = []


class KeyModels(BaseModel):
    """The key's own grants and its group's. `restricted` is what Authenticate will say: false
    means the key may call every model (nothing granted to it or its group, by default)."""

    key_id: int
    group_id: int | None
    data: list[GrantInfo]
    group_models: list[GrantInfo]
    restricted: bool
    changed: list[str] = []
