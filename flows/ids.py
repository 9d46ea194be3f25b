"""Public identifiers: prefixed ULIDs (sortable, 26 characters) and unguessable tokens."""

from __future__ import annotations

import secrets

from ulid import ULID


def prefixed_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def event_id() -> str:
    return prefixed_id("evt")


def session_id() -> str:
    return prefixed_id("ses")


def page_token() -> str:
    # 32 random bytes: 256 bits, well above the 128 the contract asks for.
    return secrets.token_urlsafe(32)


def app_public_id() -> str:
    return "app_" + secrets.token_hex(8)


def app_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def billing_action_id() -> str:
    return prefixed_id("bact")
