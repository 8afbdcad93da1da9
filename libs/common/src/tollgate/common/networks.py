"""Networks given in settings as comma-separated CIDRs (trusted proxies, webhook allow-lists)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: str) -> tuple[Network, ...]:
    """ "10.0.0.0/8, 192.0.2.7" -> networks (a bare address is a /32 or /128); ValueError names a
    bad one."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in cidrs.split(",") if part.strip()
    )


def split_host_port(value: str) -> tuple[str, int] | None:
    """ "host:port" (an IPv6 host in brackets) -> (host, port); None when it is not that."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    """Whether `address` (an IP, possibly with an IPv6 zone) lies in one of `networks`; False for
    anything that is not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in networks)
