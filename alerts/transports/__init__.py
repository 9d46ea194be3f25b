"""Alert transports, keyed by the slug an AlertDelivery names (see base.py for the contract)."""

from __future__ import annotations

from .base import Message, Sent, Transport, TransportError
from .email import EmailTransport
from .slack import SlackTransport

TRANSPORTS: dict[str, type[Transport]] = {EmailTransport.slug: EmailTransport, SlackTransport.slug: SlackTransport}


def get(slug: str) -> Transport:
    return TRANSPORTS[slug]()


__all__ = ["Message", "Sent", "Transport", "TransportError", "TRANSPORTS", "get"]
