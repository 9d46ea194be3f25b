"""The way back's signed link: a cancel receipt carries it, and it keeps the subscription until the
cancel takes effect.

The token is Django's signing (an HMAC under SECRET_KEY, SECRET_KEY_FALLBACKS still accepted after a
rotation) of the session's public id and the moment the link stops working, so neither can be changed:
a tampered token is refused, and the date is the one the receipt stated. It is no capability beyond
this one button (the session id alone opens nothing), and the page records a reactivation once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.core import signing

SALT = "receipts.way-back"


class BadLink(Exception):
    """The token was not made by us, or was altered."""


@dataclass(frozen=True)
class WayBack:
    session_id: str  # CancelSession.public_id
    until: datetime


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def way_back_token(*, session_id: str, until: datetime) -> str:
    """The same link for the same receipt every time (a re-sent receipt carries the one sent first)."""
    return _signer().sign_object({"s": session_id, "u": int(until.timestamp())})


def way_back_read(token: str) -> WayBack:
    """What a token says; BadLink when it was not signed by us as it stands."""
    try:
        value = _signer().unsign_object(token)
    except signing.BadSignature:
        raise BadLink("the link was not made by us, or was altered") from None
    if not isinstance(value, dict) or not isinstance(value.get("s"), str) or not isinstance(value.get("u"), int):
        raise BadLink("the link does not say what it should")
    return WayBack(session_id=value["s"], until=datetime.fromtimestamp(value["u"], tz=UTC))
