"""HMAC signatures shared with the business's own code (DESIGN §2 and §3)."""

from __future__ import annotations

import hashlib
import hmac
import time

# How far ahead an embed's auth.expires may lie, and how much clock skew we forgive.
AUTH_MAX_AHEAD = 24 * 3600
CLOCK_SKEW = 300

# What auth.hash covers, in the words the 403 uses. Billing acts on subscription_id, account.billing_id
# and email, so data carrying any of them must be signed with all three (an absent one as ""): a
# signature for the signer's own account must not carry someone else's subscription to billing.
COVERS_ACCOUNT = '"{app_id}:{account.internal_id}:{auth.expires}"'
COVERS_BILLING = '"{app_id}:{account.internal_id}:{auth.expires}:{subscription_id}:{account.billing_id}:{email}"'


def _hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def embed_message(*, app_id: str, internal_id: str, expires: int, subscription_id: str = "",
                  billing_id: str = "", email: str = "") -> str:
    """The string auth.hash signs: three parts, or six when any billing field is given."""
    message = f"{app_id}:{internal_id}:{expires}"
    if subscription_id or billing_id or email:
        message += f":{subscription_id}:{billing_id}:{email}"
    return message


def embed_hash(*, secret: str, app_id: str, internal_id: str, expires: int, subscription_id: str = "",
               billing_id: str = "", email: str = "") -> str:
    """auth.hash for the snippet: what the business's server computes when rendering the page."""
    return _hex(secret, embed_message(app_id=app_id, internal_id=internal_id, expires=expires,
                                      subscription_id=subscription_id, billing_id=billing_id, email=email))


def _signed_fields(data: dict) -> dict[str, str]:
    """The fields auth.hash covers, from cleaned snippet data (flows.snippet_data: strings, trimmed)."""
    account = data.get("account") or {}
    return {"app_id": data["app_id"], "internal_id": account.get("internal_id", ""),
            "subscription_id": data.get("subscription_id", ""), "billing_id": account.get("billing_id", ""),
            "email": data.get("email", "")}


def embed_auth_problem(*, secret: str, data: dict, auth: dict | None, now: float | None = None) -> str | None:
    """None when `data` (cleaned snippet data) carries a good auth block, else why not, naming what the
    hash must cover (shown to the page's developer in the 403)."""
    fields = _signed_fields(data)
    carries_billing = bool(fields["subscription_id"] or fields["billing_id"] or fields["email"])
    covers = COVERS_BILLING if carries_billing else COVERS_ACCOUNT
    if not auth:
        return f"auth is required for a live-mode app: auth.hash must be the HMAC-SHA256 of {covers}"
    now = time.time() if now is None else now
    expires = auth["expires"]
    if expires < now:
        return "auth has expired"
    if expires > now + AUTH_MAX_AHEAD + CLOCK_SKEW:
        return "auth.expires is more than 24 hours ahead"
    given = auth["hash"].lower()
    if hmac.compare_digest(embed_hash(secret=secret, expires=expires, **fields), given):
        return None
    if carries_billing and hmac.compare_digest(
            embed_hash(secret=secret, app_id=fields["app_id"], internal_id=fields["internal_id"], expires=expires),
            given):
        return (f"auth.hash does not match: it covers only {COVERS_ACCOUNT}, and this data carries "
                f"subscription_id, account.billing_id or email, so it must be the HMAC-SHA256 of {covers} "
                "(an absent field as the empty string)")
    return f"auth.hash does not match: it must be the HMAC-SHA256 of {covers}"


def return_signature(*, secret: str, event: str, account_id: str, session: str, ts: int) -> str:
    """bb_sig on return URLs, so the landing page can trust bb_event and friends."""
    return _hex(secret, f"{event}:{account_id}:{session}:{ts}")
