"""File rules: validate every line before anything is stored, keep files per organisation, refuse
to delete a file a job still needs. Never commits (the request does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.training.domain import new_id
from tollgate.training.errors import Conflict, FileTooLarge, InvalidFile
from tollgate.training.examples import Example, ExampleError, estimate_tokens, parse_jsonl, parse_objects
from tollgate.training.files.models import TrainingFile
from tollgate.training.files.repository import FileRepository
from tollgate.training.files.storage import FileStorage

PURPOSES = frozenset({"fine-tune"})
MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class CheckedFile:
    examples: list[Example]
    example_format: str
    estimated_tokens: int


class FileService:
    def __init__(self, storage: FileStorage, *, max_bytes: int, max_lines: int, max_seq_len: int) -> None:
        self.storage = storage
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.max_seq_len = max_seq_len

    def check(self, data: bytes, *, param: str = "file") -> CheckedFile:
        """CPU work (parse every line): callers run it in a thread."""
        if len(data) > self.max_bytes:
            raise FileTooLarge(f"The file is larger than {self.max_bytes} bytes.", param=param)
        try:
            examples, fmt = parse_jsonl(data, max_lines=self.max_lines)
        except ExampleError as exc:
            raise InvalidFile(f"Invalid training file: {exc}.", param=param, line=exc.line) from None
        return self._checked(examples, fmt)

    def check_inline(self, items: Sequence[Any], *, param: str) -> tuple[CheckedFile, bytes]:
        """SloughGPT's inline `training_data` (a list of examples): checked like a file's lines and
        turned into the JSONL file the job will read. `line` is the 1-based item number."""
        if len(items) > self.max_lines:
            raise InvalidFile(f"{param}: at most {self.max_lines} examples.", param=param)
        try:
            examples, fmt = parse_objects(enumerate(items, start=1))
        except ExampleError as exc:
            raise InvalidFile(
                f"{param}[{exc.line - 1}]: {exc.problem}.", param=f"{param}[{exc.line - 1}]", line=exc.line
            ) from None
        data = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode()
        if len(data) > self.max_bytes:
            raise FileTooLarge(f"{param} is larger than {self.max_bytes} bytes.", param=param)
        return self._checked(examples, fmt), data

    def _checked(self, examples: list[Example], fmt: str) -> CheckedFile:
        tokens = sum(estimate_tokens(e, self.max_seq_len) for e in examples)
        return CheckedFile(examples, fmt, tokens)

    async def upload(
        self, repo: FileRepository, org_id: str, filename: str, purpose: str, data: bytes
    ) -> TrainingFile:
        if purpose not in PURPOSES:
            raise InvalidRequest(
                f"Unsupported purpose {purpose!r}: this platform accepts 'fine-tune' files.", param="purpose"
            )
        checked = await asyncio.to_thread(self.check, data)
        return await self.store(repo, org_id, filename, purpose, data, checked)

    async def store(
        self,
        repo: FileRepository,
        org_id: str,
        filename: str,
        purpose: str,
        data: bytes,
        checked: CheckedFile,
    ) -> TrainingFile:
        """Content first, then the row (in the caller's transaction): a failed commit leaves at most
        an unreferenced file on the volume, never a row without its content."""
        name = (filename or "upload.jsonl").replace("\x00", "")[:MAX_FILENAME]
        file_id = new_id("file")
        path = await self.storage.write(org_id, file_id, data)
        return await repo.add(
            TrainingFile(
                id=file_id,
                org_id=org_id,
                filename=name,
                purpose=purpose,
                bytes=len(data),
                examples=len(checked.examples),
                example_format=checked.example_format,
                estimated_tokens=checked.estimated_tokens,
                storage_path=str(path),
            )
        )

    async def get(self, repo: FileRepository, org_id: str, file_id: str) -> TrainingFile:
        found = await repo.get(org_id, file_id)
        if found is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")
        return found

    async def content(self, repo: FileRepository, org_id: str, file_id: str) -> bytes:
        return await self.storage.read((await self.get(repo, org_id, file_id)).storage_path)

    async def delete(self, repo: FileRepository, org_id: str, file_id: str) -> str:
        """Marks the row deleted; returns the content's path for the caller to remove after commit."""
        found = await repo.get(org_id, file_id, lock="update")
        if found is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")
        if await repo.in_use(file_id):
            raise Conflict(
                f"File {file_id} is used by a fine-tuning job that has not finished; cancel it or wait.",
                param="file_id",
                code="file_in_use",
            )
        await repo.mark_deleted(file_id)
        return found.storage_path
