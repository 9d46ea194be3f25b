"""Text the database can store, checked before it gets there."""

from __future__ import annotations


def unstorable(value: str) -> str | None:
    """Why PostgreSQL would refuse this text (a NUL character, a lone UTF-16 surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None
