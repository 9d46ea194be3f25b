"""Abuse limits (DESIGN §8): fixed-window counters per client address and per App, kept in Django's
cache (Redis when REDIS_URL is set, so every web process shares them; process memory otherwise).

django-ratelimit does the counting: its windows are jittered per key so limits do not all reset on
the same second, it masks IPv6 clients to their /64 (one host owns a whole /64), and it tells how
long the current window has left, which becomes Retry-After. `RATE_LIMITS=off` turns every limit
off (benchmarks and load tests hammer the server from one address).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Limited:
    """A request over its limit: answer 429 and ask the client to come back in `retry_after` seconds."""

    scope: str
    retry_after: int


def client_ip(request: HttpRequest) -> str:
    """The client's address: behind a proxy (BEHIND_PROXY=1), the last X-Forwarded-For entry, which the
    proxy itself appended (earlier entries are whatever the client chose to send)."""
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"


def check(request: HttpRequest, *, scope: str, key: str = "ip") -> Limited | None:
    """Count this request against `settings.RATE_LIMIT_RULES[scope]` and say whether it is over.

    `key` is "ip" (the client address, IPv6 by /64) or any other string naming what is limited (an
    App's id). A cache that does not answer lets the request through: a broken Redis must not turn
    customers away from the cancel page.
    """
    if not settings.RATE_LIMITS:
        return None
    rate = settings.RATE_LIMIT_RULES[scope]
    try:
        usage = get_usage(request, group=scope, key="ip" if key == "ip" else (lambda _group, _request: key),
                          rate=rate, increment=True)
    except Exception as exc:  # noqa: BLE001 - any cache failure: fail open, loudly
        logger.warning("rate limit %s not checked, the cache failed: %s", scope, exc)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["limit"] == 0:  # the cache refused to count: fail open as above
        logger.warning("rate limit %s not checked, the cache did not count", scope)
        return None
    return Limited(scope=scope, retry_after=max(1, math.ceil(usage["time_left"])))
