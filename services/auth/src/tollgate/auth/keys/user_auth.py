"""Who is managing keys on the self-service routes, and in which organisation.

A signed-in person (access token, in `Authorization` or the credit chat API's `session` cookie) may do
anything with their own keys; an API key may act for its user only within its permissions and its own
organisation, so a leaked read-only key cannot mint itself a stronger one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import Cookie, Depends, Header, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.sessions.errors import InvalidToken, MissingCredentials
from tollgate.auth.sessions.tokens import looks_like_jwt
from tollgate.auth.web import AuthRuntime, Runtime, Tx
from tollgate.common.auth_client import api_key_from_headers
from tollgate.common.errors import Forbidden, InvalidRequest

M = TypeVar("M", bound=BaseModel)
MAX_ORG_ID_LENGTH = 64


class PermissionMissing(Forbidden):
    code = "permission_denied"


@dataclass(frozen=True, slots=True)
class KeyOwner:
    user_id: str
    org_id: str  # the credential's organisation: the token's `org` claim or the key's org
    permissions: frozenset[str] | None  # None: a signed-in person, not limited by a key's permissions
    via: Literal["access_token", "cookie", "api_key"]

    def require(self, permission: str) -> None:
        if self.permissions is not None and permission not in self.permissions:
            raise PermissionMissing(f"This API key lacks the `{permission}` permission.")


async def resolve_owner(
    session: AsyncSession, rt: AuthRuntime, credential: str, via: Literal["access_token", "cookie", "api_key"]
) -> KeyOwner:
    if looks_like_jwt(credential):
        # Signature, claims and a live session (logout ends it at once): the session rules decide.
        caller = await rt.identity.authenticate(session, credential)
        if caller.user_id is None:  # never for access tokens; kept for the type checker's sake
            raise InvalidToken("Invalid access token.")
        return KeyOwner(caller.user_id, caller.org_id, None, "cookie" if via == "cookie" else "access_token")
    if via == "cookie":
        raise InvalidToken("The session cookie must hold an access token.")
    result = await rt.keys.authenticate(session, credential)
    if result.principal is None:
        raise InvalidToken("Invalid credentials.", code=result.reason or "invalid_api_key")
    principal = result.principal
    if not principal.user_id:
        raise Forbidden("This API key belongs to no user, so it has no keys of its own.", code="no_user")
    return KeyOwner(principal.user_id, principal.org_id, frozenset(principal.permissions), "api_key")


async def header_owner(
    tx: Tx,
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> KeyOwner:
    """SloughGPT: `Authorization: Bearer <access token or API key>` or `X-API-Key`."""
    credential = api_key_from_headers(authorization, x_api_key)
    if credential is None:
        raise MissingCredentials("Send `Authorization: Bearer <access token or API key>`.")
    return await resolve_owner(tx.session, rt, credential, "api_key")


async def session_owner(
    tx: Tx,
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    session_cookie: Annotated[str | None, Cookie(alias="session")] = None,
) -> KeyOwner:
    """The credit chat API: the dashboard's session cookie, or the same headers as SloughGPT."""
    credential = api_key_from_headers(authorization, x_api_key)
    if credential is not None:
        return await resolve_owner(tx.session, rt, credential, "api_key")
    if session_cookie and session_cookie.strip():
        return await resolve_owner(tx.session, rt, session_cookie.strip(), "cookie")
    raise MissingCredentials(
        "Sign in first: send the session cookie or `Authorization: Bearer <access token>`."
    )


HeaderOwner = Annotated[KeyOwner, Depends(header_owner)]
SessionOwner = Annotated[KeyOwner, Depends(session_owner)]
# The organisation to act in (the guard API's header); the credential's own organisation when absent.
OrgHeader = Annotated[str | None, Header(alias="Swarms-Organization")]


def requested_org(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value.strip()) > MAX_ORG_ID_LENGTH:
        raise InvalidRequest("Swarms-Organization is not an organisation id.", param="Swarms-Organization")
    return value.strip()


async def parse_body(request: Request, model: type[M], owner: KeyOwner) -> M:
    """The JSON body into `model`; anything malformed is a 400 (never FastAPI's 422).

    With cookie authentication the browser sends the credential by itself, so a cross-site page
    could post a form here: requiring `application/json` (which no form can send without a CORS
    preflight, and auth allows none) closes that door."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if owner.via == "cookie" and content_type != "application/json":
        raise InvalidRequest(
            "Send the body as `Content-Type: application/json`.", code="unsupported_media_type"
        )
    raw = await request.body()
    data: Any
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidRequest(f"{param}: {first.get('msg')}" if param else first["msg"], param=param) from None
