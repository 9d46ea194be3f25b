"""HMAC signatures shared with the business's own code (DESIGN §2 and §3)."""

from __future__ import annotations

import hashlib
import hmac
import time

# How far ahead an embed's auth.expires may lie, and how much clock skew we forgive.
AUTH_MAX_AHEAD = 24 * 3600
CLOCK_SKEW = 300


def _hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def embed_hash(*, secret: str, app_id: str, internal_id: str, expires: int) -> str:
    """auth.hash for the snippet: what the business's server computes when rendering the page."""
    return _hex(secret, f"{app_id}:{internal_id}:{expires}")


def embed_auth_problem(*, secret: str, app_id: str, internal_id: str, auth: dict | None,
                       now: float | None = None) -> str | None:
    """None when the auth block is good, else why not (shown to the developer in the 403)."""
    if not auth:
        return "auth is required for a live-mode app"
    now = time.time() if now is None else now
    expires = auth["expires"]
    if expires < now:
        return "auth has expired"
    if expires > now + AUTH_MAX_AHEAD + CLOCK_SKEW:
        return "auth.expires is more than 24 hours ahead"
    expected = embed_hash(secret=secret, app_id=app_id, internal_id=internal_id, expires=expires)
    if not hmac.compare_digest(expected, auth["hash"].lower()):
        return "auth.hash does not match"
    return None


def return_signature(*, secret: str, event: str, account_id: str, session: str, ts: int) -> str:
    """bb_sig on return URLs, so the landing page can trust bb_event and friends."""
    return _hex(secret, f"{event}:{account_id}:{session}:{ts}")
