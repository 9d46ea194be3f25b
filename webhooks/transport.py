"""The HTTP side of a delivery: one POST, never a redirect followed, never a private address.

`post()` answers with what the receiver said (any status code) or raises TransportError when there
was no answer (refused, timed out, unsafe address). What a status code means (success, retry,
disable) is decided by the caller, services._send.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from celery.exceptions import SoftTimeLimitExceeded

from brightback_site.ssrf import UnsafeAddress, checked_session, parse_retry_after

USER_AGENT = "cancel-flow-webhooks/1.0"
BODY_KEPT = 1024  # bytes of the response kept on the attempt row
BODY_READ_MAX = 64 * 1024  # read at most this much; a larger answer costs us the kept-alive connection


class TransportError(Exception):
    """No HTTP answer. `permanent` says a retry cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    body_head: str
    retry_after: float | None  # seconds, from a Retry-After header
    duration_ms: int


_local = threading.local()


def _session() -> requests.Session:
    """One session per thread (and per worker process), so connections to receivers are kept alive."""
    session = getattr(_local, "session", None)
    if session is None:
        session = checked_session(user_agent=USER_AGENT)
        _local.session = session
    return session


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float,
         connect_timeout: float | None = None) -> HttpAnswer:
    """`connect_timeout` bounds the TCP (and TLS) connection, `timeout` each wait for the answer."""
    started = time.monotonic()
    response = None
    try:
        response = _session().post(url, data=body, headers=headers,
                                   timeout=(connect_timeout or timeout, timeout),
                                   allow_redirects=False, stream=True)
        head = bytearray()
        complete = True
        for chunk in response.iter_content(8192):
            if len(head) < BODY_READ_MAX:
                head += chunk
            else:
                complete = False
                break
        if not complete:
            response.close()
    except UnsafeAddress as exc:
        raise TransportError(f"refused: {exc}") from None
    except requests.Timeout:
        raise TransportError(f"timed out after {timeout:g} s") from None
    except requests.ConnectionError as exc:
        raise TransportError(f"connection failed: {_reason(exc)}") from None
    except requests.RequestException as exc:
        raise TransportError(f"request failed: {_reason(exc)}") from None
    except SoftTimeLimitExceeded:
        if response is not None:
            response.close()
        raise TransportError("timed out: the receiver kept the connection open too long") from None
    return HttpAnswer(
        status_code=response.status_code,
        body_head=bytes(head[:BODY_KEPT]).decode("utf-8", errors="replace"),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        duration_ms=round((time.monotonic() - started) * 1000),
    )


def _reason(exc: Exception) -> str:
    # requests nests urllib3's errors; the innermost message is the one a person can act on.
    inner = exc
    while inner.args and isinstance(inner.args[0], Exception):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    return str(reason or inner)[:500]
