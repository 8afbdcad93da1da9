"""Query strings and answers of the chat records routes (seed 004's shapes: data/total/limit/offset)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

BIGINT_MAX = 9_223_372_036_854_775_807


def _blank_to_none(v: Any) -> Any:
    return None if v == "" else v


def _blank_to(default: int) -> BeforeValidator:
    return BeforeValidator(lambda v: default if v in ("", None) else v)


OptionalId = Annotated[Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None, BeforeValidator(_blank_to_none)]
Q = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_blank_to_none)]
Limit = Annotated[int, _blank_to(10), Field(ge=1, le=100)]
Offset = Annotated[int, _blank_to(0), Field(ge=0, le=1_000_000)]


class SessionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: Q = None
    limit: Limit = 10
    offset: Offset = 0
    key_id: OptionalId = None


class ThreadQuery(SessionQuery):
    session_id: OptionalId = None


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class SessionInfo(BaseModel):
    id: int
    session_id: str  # the client's X-Session-Id (or the request id of a request sent without one)
    org_id: str
    key_id: int
    user_id: str
    title: str | None  # the first user message, cut to 200 characters; None for metadata-only records
    thread_count: int
    entry_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ThreadInfo(BaseModel):
    id: int
    session_id: int
    org_id: str
    key_id: int
    user_id: str
    title: str | None
    model: str
    entry_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class Message(BaseModel):
    role: str
    content: str


class EntryInfo(BaseModel):
    id: int
    request_id: str
    model: str
    stream: bool
    status: str
    prompt_tokens: int
    completion_tokens: int
    messages: list[Message] | None  # None for metadata-only records
    answer: str | None
    created_at: dt.datetime


class SessionPage(BaseModel):
    data: list[SessionInfo]
    total: int
    limit: int
    offset: int


class ThreadPage(BaseModel):
    data: list[ThreadInfo]
    total: int
    limit: int
    offset: int


class SessionDetail(SessionInfo):
    threads: list[ThreadInfo]


class ThreadDetail(ThreadInfo):
    entries: list[EntryInfo]


class Deleted(BaseModel):
    id: int
    deleted: bool = True


class Purged(BaseModel):
    org_id: str | None
    sessions: int
    entries: int = 0
