"""What the routes share: the runtime built by main, one transaction per request, the admin check,
the caller of the user-facing routes and the client's address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.keys.events import KeyEvents
from tollgate.auth.keys.service import KeyService, PlatformAdminRequired
from tollgate.auth.sessions.errors import MissingCredentials
from tollgate.auth.sessions.service import Caller, SessionService
from tollgate.common.auth_client import Principal, api_key_from_headers, permission_for_method
from tollgate.common.errors import Forbidden, Unauthenticated


@dataclass(frozen=True, slots=True)
class AuthRuntime:
    """Collaborators the HTTP side needs; main builds one, tests build one with fakes."""

    sessions: async_sessionmaker[AsyncSession]
    keys: KeyService
    events: KeyEvents
    identity: SessionService
    # Peers trusted to name the client in X-Forwarded-For (the gateway beside us).
    trusted_proxies: frozenset[str] = frozenset({"127.0.0.1", "::1"})


def runtime(request: Request) -> AuthRuntime:
    rt: AuthRuntime = request.app.state.runtime
    return rt


Runtime = Annotated[AuthRuntime, Depends(runtime)]


class Transaction:
    """The request's session plus side effects that must wait for its commit (events)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._after_commit: list[Callable[[], Awaitable[None]]] = []

    def after_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._after_commit.append(hook)

    async def run_after_commit(self) -> None:
        for hook in self._after_commit:
            await hook()


async def transaction(rt: Runtime) -> AsyncIterator[Transaction]:
    async with rt.sessions() as session:
        tx = Transaction(session)
        try:
            yield tx
            await session.commit()
        except BaseException as exc:
            # A refusal that records a fact (a replayed refresh token revoking its session) is
            # marked `commit_writes`: the fact must survive the error response.
            if getattr(exc, "commit_writes", False):
                await session.commit()
            else:
                await session.rollback()
            raise
    await tx.run_after_commit()


# scope="function": commit (and its failure) happens before the response is sent, never after.
Tx = Annotated[Transaction, Depends(transaction, scope="function")]


@dataclass(frozen=True, slots=True)
class AdminScope:
    """Who may act on the admin routes, and where: a platform admin key (role admin) everywhere;
    an owner's or admin's key of a team organisation only inside that organisation."""

    principal: Principal
    org_id: str | None  # None: every organisation (a platform admin key)

    @property
    def platform(self) -> bool:
        return self.org_id is None

    def covers(self, org_id: str) -> bool:
        return self.org_id is None or self.org_id == org_id

    def require_platform(self, what: str) -> None:
        if self.org_id is not None:
            raise PlatformAdminRequired(f"{what} needs a platform admin key.")

    def require(self, permission: str) -> None:
        if not self.principal.may(permission):
            raise Forbidden(f"This API key lacks the `{permission}` permission.", code="permission_denied")


async def require_admin(
    request: Request,
    tx: Tx,
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> AdminScope:
    """Checks the caller's key in-process, against this service's own database. Owners of a
    personal organisation are not admins here: they manage their own keys on /auth/api-keys."""
    api_key = api_key_from_headers(authorization, x_api_key)
    if api_key is None:
        raise Unauthenticated("Missing API key: send `Authorization: Bearer <key>`.", code="missing_api_key")
    result = await rt.keys.authenticate(tx.session, api_key)
    if result.principal is None:
        raise Unauthenticated(_REFUSALS.get(result.reason or "", "Invalid API key."))
    principal = result.principal
    scope: AdminScope | None = None
    if principal.is_admin:
        scope = AdminScope(principal, None)
    elif principal.is_org_admin:
        org = await AccountRepository(tx.session).get_organization(principal.org_id)
        if org is not None and not org.personal:
            scope = AdminScope(principal, principal.org_id)
    if scope is None:
        raise Forbidden(
            "This route needs an admin API key, or the key of a team organisation's owner or admin.",
            code="admin_required",
        )
    scope.require(permission_for_method(request.method))
    return scope


Admin = Annotated[AdminScope, Depends(require_admin)]

_REFUSALS = {
    "unknown_key": "Incorrect API key provided.",
    "revoked": "This API key has been revoked.",
    "expired": "This API key has expired.",
}


async def current_caller(
    tx: Tx,
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """The user-facing /auth routes take an access token or an API key, in the same headers."""
    credential = api_key_from_headers(authorization, x_api_key)
    if credential is None:
        raise MissingCredentials("Send `Authorization: Bearer <access token or API key>`.")
    return await rt.identity.authenticate(tx.session, credential)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def client_ip(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The peer's address, or, when the peer is a trusted proxy, the nearest untrusted address in
    X-Forwarded-For (the right end: entries further left are whatever the client wrote)."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if peer not in trusted_proxies or not forwarded:
        return peer
    for hop in reversed([h.strip() for h in forwarded.split(",")]):
        if hop and hop not in trusted_proxies:
            return hop[:64]
    return peer
