"""Fakes for auth's collaborators (never for the code under test), and helpers the tests share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from tollgate.auth.keys.events import KeyChange


class RecordingEvents:
    """Stands in for the Kafka publisher: remembers what would have gone to auth.keys.v1."""

    def __init__(self) -> None:
        self.published: list[KeyChange] = []

    async def publish(self, changes: Sequence[KeyChange]) -> None:
        self.published.extend(changes)


# Helpers of the /auth/* tests (SloughGPT).
PASSWORD = "correct-horse-battery"


def new_email() -> str:
    return f"Person.{uuid.uuid4().hex[:10]}@Example.com"


async def register(client: httpx.AsyncClient, email: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"email": email or new_email(), "password": PASSWORD, "name": "Ada Lovelace", **extra}
    resp = await client.post("/auth/register", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def assert_seed_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code and error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    return dict(error)
