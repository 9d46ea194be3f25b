"""The contract every alert transport keeps. These docstrings are the contract: read them before
writing a transport, and keep them true when changing one.

A transport carries one rendered alert (`Message`, our own dataclass: never a vendor object) to one
destination and says how it went: it returns a `Sent` when the far side accepted the message, or
raises `TransportError` saying whether trying again can help. It does not retry, sleep, log or touch
the database: alerts.services owns the outbox row, its attempts, its backoff and its status.

Transports are registered in alerts.transports.TRANSPORTS under a lowercase slug, which is the
AlertDelivery's channel (`email`, `slack`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Message:
    """One alert, fully rendered. Email transports read the email fields, chat transports `chat`.

    `subject` is one line. `text` and `html` are the two parts of the same content. `reply_to` is
    where a reply from a help desk should go (the customer, for team alerts). `chat` is the JSON
    object to post (Slack's Block Kit payload), already escaped for its markup.
    """

    subject: str = ""
    text: str = ""
    html: str = ""
    to: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    from_email: str | None = None  # None: settings.DEFAULT_FROM_EMAIL
    headers: dict[str, str] = field(default_factory=dict)
    chat: dict[str, Any] | None = None
    url: str = ""  # the chat webhook's URL


@dataclass(frozen=True)
class Sent:
    """The far side accepted the message. `answer` is what it said, kept on the row for staff (a
    queue id, "ok"), or empty when it says nothing."""

    answer: str = ""


class TransportError(Exception):
    """The message was not accepted.

    `message` is a plain sentence for staff, including the server's own answer when there was one
    ("550 5.1.1 No such mailbox"). `permanent` is True only when the same message to the same
    destination cannot succeed later (a 5xx SMTP reply, a Slack 4xx such as a revoked webhook);
    timeouts, refused connections, 4xx SMTP replies, HTTP 429 and 5xx are not permanent.
    `retry_after` is the wait in seconds the far side asked for (Slack's Retry-After), if any.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class Transport(ABC):
    """One way of carrying an alert. Instances are cheap and hold no connection between sends."""

    slug: ClassVar[str]

    @abstractmethod
    def send(self, message: Message) -> Sent:
        """Hand `message` to the far side once, within the configured timeouts.

        Must return only when the far side accepted it, and must raise TransportError (never another
        exception) for every failure it can tell apart, with `permanent` set as the class docstring
        says. A message accepted once must not be sent again by the same call.
        """

    def problems(self, message: Message) -> list[str]:
        """What makes `message` unsendable by this transport (no recipient, no URL); empty when it
        can be sent. Checked before `send`; the default finds nothing."""
        return []
