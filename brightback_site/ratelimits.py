"""Abuse limits (DESIGN §8): fixed-window counters per client address and per App, kept in Django's
cache (Redis when REDIS_URL is set, so every web process shares them; process memory otherwise).

django-ratelimit does the counting: its windows are jittered per key so limits do not all reset on
the same second, and it tells how long the current window has left, which becomes Retry-After.
`RATE_LIMITS=off` turns every limit off (benchmarks and load tests hammer the server from one address).
Which address a request comes from is ours to say (client_ip, TRUSTED_PROXIES), and always an address.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN_CLIENT = "0.0.0.0"

@dataclass(frozen=True)
class Limited:
    """A request over its limit: answer 429 and ask the client to come back in `retry_after` seconds."""

    scope: str
    retry_after: int


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1, and must match 10.0.0.0/8
    return address


@functools.lru_cache(maxsize=8)
def _networks(listed: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in listed)


def _trusted(address: IPAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def peer_is_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the direct peer (REMOTE_ADDR) is one of TRUSTED_PROXIES, whose forwarded headers we read."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    return peer is not None and _trusted(peer)


def client_ip(request: HttpRequest) -> str:
    """The client's address, always a valid IP address.

    The direct peer (REMOTE_ADDR) unless it is one of TRUSTED_PROXIES; then the right-most
    X-Forwarded-For entry that is not a trusted proxy (each proxy appends the address it saw, so entries
    to the left of the first untrusted one are whatever the client chose to send). An entry that is not an
    IP address ends the walk at the direct peer: garbage must not become a fresh key each time, nor skip
    the count. A peer that is not an address at all (a Unix socket) counts as 0.0.0.0.
    """
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return UNKNOWN_CLIENT
    if not _trusted(peer):
        return str(peer)
    client = peer
    for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        if not entry.strip() and client is peer:
            continue  # no header, or a trailing comma
        hop = _address(entry)
        if hop is None:
            return str(peer)
        client = hop
        if not _trusted(hop):
            break
    return str(client)


def client_key(request: HttpRequest) -> str:
    """What the per-address limits count by: the client's address, an IPv6 client by its /64 (one host
    commonly holds a whole /64)."""
    address = ipaddress.ip_address(client_ip(request))
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def check(request: HttpRequest, *, scope: str, key: str = "ip", from_address: bool = False) -> Limited | None:
    """Count this request against `settings.RATE_LIMIT_RULES[scope]` and say whether it is over.

    `key` is "ip" (the client address, IPv6 by /64) or any other string naming what is limited (an App's
    id, a username); `from_address` counts that string per client address (a username tried from one
    address). The key is worked out before the cache is asked, and never fails: only a cache that does
    not answer lets the request through, as a broken Redis must not turn customers away from the cancel
    page.
    """
    if not settings.RATE_LIMITS:
        return None
    rate = settings.RATE_LIMIT_RULES[scope]
    counted = client_key(request) if key == "ip" else f"{client_key(request)}|{key}" if from_address else key
    try:
        usage = get_usage(request, group=scope, key=lambda _group, _request: counted, rate=rate, increment=True)
    except Exception as exc:  # noqa: BLE001 - any cache failure: fail open, loudly
        logger.warning("rate limit %s not checked, the cache failed: %s", scope, exc)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["limit"] == 0:  # the cache refused to count: fail open as above
        logger.warning("rate limit %s not checked, the cache did not count", scope)
        return None
    return Limited(scope=scope, retry_after=max(1, math.ceil(usage["time_left"])))
