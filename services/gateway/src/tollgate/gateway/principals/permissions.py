"""Key permissions at the gateway (SloughGPT: read / write / delete), decided by the HTTP method:
reads need `read`, DELETE needs `delete`, everything else `write` (calling a model is a write, as in
OpenAI's key permissions). Checked right after the key is resolved: before any billing hold,
upstream call or forward, and answered 403 `permission_denied` in OpenAI's envelope."""

from __future__ import annotations

from typing import Protocol

from starlette.datastructures import Headers

from tollgate.common.auth_client import Principal, api_key_from_headers, permission_for_method
from tollgate.common.errors import Forbidden


class PermissionDenied(Forbidden):
    code = "permission_denied"


class Principals(Protocol):
    async def get(self, api_key: str) -> Principal: ...


def ensure_permitted(principal: Principal, method: str) -> None:
    permission = permission_for_method(method)
    if not principal.may(permission):
        raise PermissionDenied(f"This API key lacks the `{permission}` permission this request needs.")


async def ensure_key_permitted(principals: Principals, headers: Headers, method: str) -> None:
    """For handlers that resolve the key themselves (the chat fast path, the operations routes):
    the same cached lookup, done first. Without a key nothing is decided here, and an unknown key
    raises the same 401 the handler would."""
    api_key = api_key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
    if api_key is not None:
        ensure_permitted(await principals.get(api_key), method)
