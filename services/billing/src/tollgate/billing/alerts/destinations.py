"""Where webhooks may go: by default only to public addresses (and networks an operator allow-lists),
so an organisation admin cannot aim billing's worker at the platform's own network (SSRF). The local
stack allows private addresses.

Two checks. `refusal` resolves the URL's host before a delivery, for a clear permanent error. And
every connection the webhook client opens goes through `PublicNetworkBackend`, which resolves the
host itself and connects to the address it checked: a name that resolves to a public address for
the first check and to 127.0.0.1 a moment later (DNS rebinding) is refused at connect time, and so
is a redirect (not followed anyway) or any later connection. Why our own: httpx has no hook for the
address it connects to; httpcore's network backend is that hook (and TLS still verifies the name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from tollgate.common.networks import Network, in_networks

Resolver = Callable[[str, int], Awaitable[list[str]]]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def permitted(address: str, allowed: Iterable[Network] = ()) -> bool:
    """A public address, or one inside a network the operator allow-listed."""
    return is_public(address) or in_networks(address, allowed)


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class PublicNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend for the webhook client: connects only to permitted addresses,
    the very address it checked (see the module's docstring)."""

    def __init__(
        self,
        allowed: tuple[Network, ...] = (),
        *,
        resolve: Resolver = _resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = allowed
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    # httpcore's interface passes the timeout, hence ASYNC109
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {type(exc).__name__}") from exc
        if not addresses or not all(permitted(a, self._allowed) for a in addresses):
            raise httpcore.ConnectError(f"{host} resolves to a private, loopback or reserved address")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a webhook is never delivered to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connection pool connects through PublicNetworkBackend (the pool is
    the transport's `_pool`, which httpx builds without a way to pass a network backend)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


async def refusal(url: str, *, allow_private: bool, allowed: tuple[Network, ...] = ()) -> str | None:
    """Why `url` may not be called, or None. Every address the host resolves to must be permitted."""
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await _resolve(host, port)
    except OSError as exc:
        return f"cannot resolve the webhook host: {type(exc).__name__}"
    if not addresses or not all(permitted(a, allowed) for a in addresses):
        return "the webhook host resolves to a private, loopback or reserved address"
    return None
