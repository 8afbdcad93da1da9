"""OpenAI's File object and list shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tollgate.training.files.models import TrainingFile


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"
    status_details: str | None = None
    expires_at: int | None = None

    @classmethod
    def of(cls, f: TrainingFile) -> FileObject:
        return cls(
            id=f.id,
            bytes=f.bytes,
            created_at=int(f.created_at.timestamp()),
            filename=f.filename,
            purpose=f.purpose,
        )


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
