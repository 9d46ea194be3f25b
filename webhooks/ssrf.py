"""Refusing endpoints that point inside our own network (server-side request forgery).

Only globally routable addresses are allowed, unless settings.WEBHOOK_ALLOWED_NETWORKS lists the
network (tests allow 127.0.0.0/8). The check runs twice: when an endpoint is saved (its host is
resolved) and on every connection, against the address the socket really connected to, so a DNS
answer that changes between the two (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(Exception):
    """The endpoint resolves to an address we refuse to send to."""


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in spec)


def address_allowed(address: str | IPAddress) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in _networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))):
        return True
    # is_global is False for private, loopback, link-local, shared (CGNAT), reserved and
    # documentation ranges; multicast is global for some ranges but never a webhook receiver.
    return ip.is_global and not ip.is_multicast


def check_address(address: str) -> None:
    if not address_allowed(address):
        raise UnsafeAddress(
            f"{address} is a private, loopback, link-local or reserved address "
            "(allow its network in WEBHOOK_ALLOWED_NETWORKS to send there)")


def check_url(url: str) -> None:
    """Resolve the URL's host and refuse it if any address is not allowed.

    A host that does not resolve (yet) passes: sending checks the connected address anyway.
    """
    host = urlsplit(url).hostname
    if not host:
        raise UnsafeAddress("the URL has no host")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return
    for info in infos:
        check_address(str(info[4][0]))
