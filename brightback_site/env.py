"""Tiny, strict readers for settings from the environment (a malformed value is an error, not a guess)."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import zoneinfo

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, not {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def envfloat(name: str, default: float, *, positive: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ImproperlyConfigured(f"{name} must be a {'positive ' if positive else ''}number, not {raw!r}")
    return value


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envnetworks(name: str) -> list[str]:
    """Comma-separated IP addresses or networks (10.0.0.0/8, 127.0.0.1, ::1), each as its network
    (127.0.0.1/32); host names, ranges and wildcards are refused."""
    networks = []
    for item in envlist(name, []):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list IP addresses or networks such as 10.0.0.0/8 or "
                                       f"127.0.0.1, comma-separated; {item!r} is neither") from None
    return networks


def envzone(name: str, default: str) -> str:
    """An IANA time zone name such as Europe/Paris, checked against the system's (or tzdata's) database."""
    value = (os.environ.get(name) or "").strip() or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a time zone name such as Europe/Paris, not {value!r}") from None
    return value


_RATE = re.compile(r"^[1-9][0-9]*/[1-9]?[0-9]*[smhd]$")


def envrate(name: str, default: str) -> str:
    """A rate limit such as "30/m" (COUNT/PERIOD, PERIOD one of s m h d, optionally "100/5m")."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not _RATE.match(value):
        raise ImproperlyConfigured(f"{name} must look like 30/m (a count, then s, m, h or d), not {raw!r}")
    return value
