"""Request and response bodies of the admin group routes (the Bedrock-style gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

GroupId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]
GroupName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, strict=True)
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000, strict=True)]


class _Body(BaseModel):
    # An unknown field is most likely a typo that would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid")


class SaveGroupRequest(_Body):
    """The Bedrock-style gateway's "save" style: with an id it updates that group; without one it
    creates the group, or updates the group of that name (so scripts can re-run a save)."""

    id: GroupId | None = None
    name: GroupName
    description: Description | None = None


class DeleteGroupRequest(_Body):
    id: GroupId


def _blank_to_none(value: Any) -> Any:
    # The Bedrock-style gateway sends every filter, empty ones included: `?q=&limit=10&offset=`.
    return None if isinstance(value, str) and not value.strip() else value


class ListGroupsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(_blank_to_none)] = None
    limit: Annotated[
        int, BeforeValidator(lambda v: 10 if _blank_to_none(v) is None else v), Field(ge=1, le=100)
    ] = 10
    offset: Annotated[int, BeforeValidator(lambda v: 0 if _blank_to_none(v) is None else v), Field(ge=0)] = 0


class GroupInfo(BaseModel):
    id: int
    name: str
    description: str
    created_at: datetime

    @classmethod
    def build(cls, group: Any) -> GroupInfo:
        return cls(id=group.id, name=group.name, description=group.description, created_at=group.created_at)


class GroupPage(BaseModel):
    data: list[GroupInfo]
    total: int
    limit: int
    offset: int


class DeletedGroup(BaseModel):
    id: int
    deleted: bool = True
