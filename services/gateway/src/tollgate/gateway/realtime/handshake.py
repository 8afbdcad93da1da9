"""The first message of a /ws connection (auth), the close codes and the frames the server sends."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.websockets import WebSocket

from tollgate.common.errors import Forbidden, TollgateError, Unauthenticated
from tollgate.common.waits import timed
from tollgate.gateway.principals.permissions import ensure_permitted
from tollgate.gateway.realtime.events import Cursor, Viewer

if TYPE_CHECKING:
    from tollgate.gateway.realtime.session import Realtime

BAD_MESSAGE = 4400  # the first message is not an auth message
UNAUTHENTICATED = 4401  # no auth in time, or a token that is not a valid key or session
FORBIDDEN = 4403  # a key without the `read` permission
TRY_AGAIN_LATER = 1013  # auth could not be asked
SLOW_CLIENT = 4408  # the send queue overflowed or a send timed out


def frame(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def error_frame(code: str, message: str) -> bytes:
    return frame("error", error={"code": code, "message": message})


async def authenticate(ws: WebSocket, rt: Realtime) -> tuple[Viewer, Cursor | None, str] | None:
    """The first message: `{"type": "auth", "token": ..., "last_event_id"?: ...}` within the auth
    timeout. None when the connection was closed instead (with the reason)."""
    try:
        raw = await timed(ws.receive_text(), rt.limits.auth_timeout_s)
    except TimeoutError:
        await refuse(ws, rt, UNAUTHENTICATED, "auth_timeout", "No auth message in time.")
        return None
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        message = None
    token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
    if not isinstance(message, dict) or not isinstance(token, str) or not token:
        await refuse(
            ws, rt, BAD_MESSAGE, "bad_message", 'The first message must be {"type": "auth", "token": ...}.'
        )
        return None
    try:
        principal = await rt.principals.get(token)
        ensure_permitted(principal, "GET")  # events are reads: a key needs `read`
    except Unauthenticated:
        text = "Invalid token: an API key or a session access token."
        await refuse(ws, rt, UNAUTHENTICATED, "unauthenticated", text)
        return None
    except Forbidden:
        await refuse(ws, rt, FORBIDDEN, "permission_denied", "This API key lacks the `read` permission.")
        return None
    except TollgateError:  # auth unreachable: nothing is wrong with the token, try again
        await refuse(ws, rt, TRY_AGAIN_LATER, "unavailable", "Authentication is unavailable; reconnect.")
        return None
    cursor = None
    if message.get("last_event_id"):
        try:
            cursor = Cursor.parse(str(message["last_event_id"]))
        except ValueError as exc:
            await refuse(ws, rt, BAD_MESSAGE, "bad_message", str(exc))
            return None
    sees_all = principal.is_admin or principal.is_org_admin
    return Viewer(principal.org_id, principal.key_id, principal.user_id, sees_all), cursor, token


async def refuse(ws: WebSocket, rt: Realtime, code: int, reason: str, message: str) -> None:
    rt.metrics.closed.labels(reason).inc()
    with contextlib.suppress(Exception):
        await ws.send_text(error_frame(reason, message).decode())
        await ws.close(code, message)
