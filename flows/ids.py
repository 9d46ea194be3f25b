"""Public identifiers: prefixed ULIDs (sortable, 26 characters) and unguessable tokens."""

from __future__ import annotations

import secrets
import time

from ulid import ULID


def prefixed_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def event_id() -> str:
    return prefixed_id("evt")


def session_id() -> str:
    return prefixed_id("ses")


def page_token(created: float | None = None) -> str:
    """The hosted page's token: 32 random bytes (256 bits, well above the 128 the contract asks for) after
    the creation time in milliseconds, as 11 lowercase hex digits (until the year 2527).

    The time tells nothing a customer does not know and guesses nothing: it is there for the database.
    Its index then takes each new session beside the last one, as it does time-ordered ids, instead of at a
    random place: on a table that has served for a while, a random place is a page not written since the
    last checkpoint, which PostgreSQL copies whole into its log (about 8 kB per /precancel, and again when
    the decision updates the row). Lowercase hex sorts the same in every collation.
    """
    millis = int((time.time() if created is None else created) * 1000)
    return f"{millis:011x}{secrets.token_urlsafe(32)}"


def app_public_id() -> str:
    return "app_" + secrets.token_hex(8)


def app_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def billing_action_id() -> str:
    return prefixed_id("bact")
