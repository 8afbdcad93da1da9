"""Where webhooks may go: by default only to public addresses, so an organisation admin cannot aim
billing's worker at the platform's own network (SSRF). The local stack allows private addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not be called, or None. Every address the host resolves to must be public."""
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve the webhook host: {type(exc).__name__}"
    if not infos or not all(is_public(str(info[4][0])) for info in infos):
        return "the webhook host resolves to a private, loopback or reserved address"
    return None
