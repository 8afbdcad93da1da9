"""Bodies of the chat records setting (docs/chat-records.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["off", "metadata", "full"]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
OrgId = Annotated[str, Field(min_length=1, max_length=64)]


class RecordingQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    org_id: OrgId | None = None  # default: the caller's own organisation


class RecordingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: OrgId | None = None
    mode: Mode | None = None
    retention_days: RetentionDays | None = None


class RecordingSetting(BaseModel):
    org_id: str
    mode: Mode
    retention_days: int
