"""Refusing outbound URLs that point inside our own network (server-side request forgery).

Every channel that sends HTTP to a URL a user typed (webhook endpoints, Slack incoming webhooks) uses
this. Only globally routable addresses are allowed, unless settings.WEBHOOK_ALLOWED_NETWORKS lists the
network (tests allow 127.0.0.0/8). The check runs twice: when the URL is saved (its host is resolved)
and on every connection, against the address the socket really connected to (`checked_session`), so a
DNS answer that changes between the two (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(Exception):
    """The URL resolves to an address we refuse to send to."""


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


# --- sending: every connection checked against the address it really reached ---------------------

class _CheckedPeerMixin:
    def _new_conn(self):  # noqa: ANN202 - urllib3's signature
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            check_address(sock.getpeername()[0])
        except UnsafeAddress:
            sock.close()
            raise
        return sock


class _CheckedHTTPConnection(_CheckedPeerMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedPeerMixin, HTTPSConnection):
    pass


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPConnectionPool, "https": _CheckedHTTPSConnectionPool}


def checked_session(*, user_agent: str, pool_maxsize: int = 4) -> requests.Session:
    """A requests session whose every connection raises UnsafeAddress (wrapped by requests or not)
    when the peer it reached is not allowed. It ignores proxies and .netrc from the environment: the
    connected address must be the receiver's."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", _CheckedAdapter(pool_maxsize=pool_maxsize))
    session.mount("https://", _CheckedAdapter(pool_maxsize=pool_maxsize))
    session.headers = {"User-Agent": user_agent, "Accept": "*/*"}
    return session


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
