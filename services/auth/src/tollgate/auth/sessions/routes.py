"""/auth/* for people (SloughGPT and IndoxRouter): thin handlers; the rules are in SessionService."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError

from tollgate.auth.keys.user_auth import requested_org
from tollgate.auth.sessions.errors import MissingCredentials
from tollgate.auth.sessions.schemas import (
    AccessToken,
    LoggedOut,
    LoginRequest,
    Me,
    MeKey,
    OrganizationOut,
    RefreshRequest,
    Registered,
    RegisterRequest,
    SwitchOrganizationRequest,
    TokenPair,
    TokenRequest,
    UserOut,
)
from tollgate.auth.sessions.service import Tokens
from tollgate.auth.web import CurrentCaller, Runtime, Tx, client_ip
from tollgate.common.auth_client import api_key_from_headers
from tollgate.common.errors import InvalidRequest

router = APIRouter(prefix="/auth", tags=["sessions"])

M = TypeVar("M", bound=BaseModel)


@router.post("/register", status_code=201, response_model=Registered)
async def register(body: RegisterRequest, tx: Tx, rt: Runtime) -> Registered:
    user, tokens = await rt.identity.register(tx.session, body)
    return Registered(**_pair(tokens).model_dump(), user=UserOut.model_validate(user, from_attributes=True))


@router.post("/login", response_model=TokenPair)
async def login(body: LoginRequest, request: Request, tx: Tx, rt: Runtime) -> TokenPair:
    ip = client_ip(request, rt.trusted_proxies)
    return _pair(await rt.identity.login(tx.session, body.email, body.password, ip))


@router.post("/token", response_model=AccessToken)
async def token(request: Request, tx: Tx, rt: Runtime) -> AccessToken:
    """IndoxRouter: form-encoded (OAuth2 password grant) or JSON `username`/`password`."""
    body = await _parse(request, TokenRequest, allow_empty=False)
    ip = client_ip(request, rt.trusted_proxies)
    tokens = await rt.identity.login(tx.session, body.username, body.password, ip, with_refresh=False)
    return AccessToken(access_token=tokens.access_token, expires_in=tokens.expires_in)


@router.post("/refresh", response_model=TokenPair)
async def refresh(
    request: Request, tx: Tx, rt: Runtime, authorization: Annotated[str | None, Header()] = None
) -> TokenPair:
    """SloughGPT sends `Authorization: Bearer <refresh_token>`; a `{refresh_token}` body works too."""
    body = await _parse(request, RefreshRequest, allow_empty=True)
    presented = body.refresh_token or api_key_from_headers(authorization, None)
    if presented is None:
        raise MissingCredentials("Send the refresh token as `Authorization: Bearer <refresh_token>`.")
    return _pair(await rt.identity.refresh(tx.session, presented))


@router.post("/logout", response_model=LoggedOut)
async def logout(caller: CurrentCaller, tx: Tx, rt: Runtime) -> LoggedOut:
    await rt.identity.logout(tx.session, caller)
    return LoggedOut()


@router.post("/switch-organization", response_model=TokenPair)
async def switch_organization(request: Request, caller: CurrentCaller, tx: Tx, rt: Runtime) -> TokenPair:
    """The signed-in user's session moved to another organisation of theirs: a new token pair whose
    access token names it; the presented session ends. An API key cannot switch."""
    body = await _parse(request, SwitchOrganizationRequest, allow_empty=False)
    return _pair(await rt.identity.switch_organization(tx.session, caller, body.organization_id))


@router.get("/me", response_model=Me)
async def me(
    caller: CurrentCaller,
    tx: Tx,
    rt: Runtime,
    org: Annotated[str | None, Header(alias="Swarms-Organization")] = None,
) -> Me:
    """With `Swarms-Organization`, the organisation shown is that one (the caller must belong to
    it; an API key only ever to its own)."""
    found = await rt.identity.identify(tx.session, caller, requested_org(org))
    user = UserOut.model_validate(found.user, from_attributes=True) if found.user else None
    org = (
        OrganizationOut(id=found.org.id, name=found.org.name, personal=found.org.personal, role=found.role)
        if found.org
        else None
    )
    key = caller.key
    shown = (
        MeKey(id=key.key_id, key_prefix=key.key_prefix, role=key.role, permissions=list(key.permissions))
        if key
        else None
    )
    return Me(user=user, organization=org, auth=caller.via, key=shown)


def _pair(tokens: Tokens) -> TokenPair:
    assert tokens.refresh_token is not None  # every route answering a pair asked for one
    return TokenPair(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
    )


async def _parse(request: Request, model: type[M], *, allow_empty: bool) -> M:
    """JSON or form body into `model`; anything malformed is a 400 (never FastAPI's 422)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    if not raw.strip():
        if not allow_empty:
            raise InvalidRequest("A request body is required.")
        data = {}
    elif content_type == "application/x-www-form-urlencoded":
        try:
            data = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("The form body could not be parsed.") from None
    else:
        try:
            data = orjson.loads(raw)
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
