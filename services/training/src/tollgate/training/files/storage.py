"""File contents on the data volume: <files_dir>/<org>/<file id>.jsonl, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path


class FileStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, org_id: str, file_id: str) -> Path:
        # org ids come from auth; hashing keeps any character out of the path
        folder = hashlib.sha256(org_id.encode()).hexdigest()[:16]
        return self.root / folder / f"{file_id}.jsonl"

    async def write(self, org_id: str, file_id: str, data: bytes) -> Path:
        return await asyncio.to_thread(self._write, self.path_for(org_id, file_id), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
        return path

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(Path(path).unlink, True)
