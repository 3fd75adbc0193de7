"""Where a callback may go: resolve its host first, check every address, connect to a checked one.

A callback URL is chosen by whoever submits a task, so it must not reach what only the workers
can reach (a cloud metadata service, Redis, an admin port). The host is resolved once; the
callback is refused unless *every* address is globally routable or inside `webhooks.
allow_networks`, and the connection then goes to a checked address (the request keeps the
original name in `Host` and in TLS's SNI and certificate check). So a name that resolves to a
public address when checked and a private one when connected (DNS rebinding) has no second look.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = ["Refused", "Target", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The callback may not be sent there (recorded, never retried)."""


@dataclass(frozen=True)
class Target:
    """A checked callback: the URL to connect to (its host an address) and the original name."""

    url: str
    host_header: str
    sni_hostname: str | None  # https: the name the certificate must carry


def _allowed(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1
        address = mapped
    if any(address in net for net in allow):
        return True
    return address.is_global and not address.is_multicast


def _netloc(address: IPAddress, port: int | None) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return host if port is None else f"{host}:{port}"


async def resolve(url: str, allow: Sequence[IPNetwork]) -> Target:
    """The checked target of `url`, or `Refused` naming the address that is not allowed."""
    parts: SplitResult = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(f"not an http(s) URL with a host: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from exc  # retried: DNS may heal
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise ConnectionError(f"{host} resolved to no address")
    for address in addresses:
        if not _allowed(address, allow):
            raise Refused(
                f"{host} resolves to {address}, which is not a global address "
                "(allow it with webhooks.allow_networks)"
            )
    checked = addresses[0]
    target = parts._replace(netloc=_netloc(checked, parts.port)).geturl()
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:  # an IPv6 literal keeps its brackets in Host
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    return Target(target, host_header, host if parts.scheme == "https" else None)
