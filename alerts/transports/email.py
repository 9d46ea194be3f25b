"""Email through Django's email framework (brightback_site.mail: what a failure means, shared with the
receipts channel)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from brightback_site import mail

from .base import Message, Sent, Transport, TransportError


class EmailTransport(Transport):
    slug = "email"

    def problems(self, message: Message) -> list[str]:
        return [] if message.to else ["no recipients"]

    def send(self, message: Message) -> Sent:
        email = EmailMultiAlternatives(
            subject=message.subject, body=message.text, from_email=message.from_email or settings.DEFAULT_FROM_EMAIL,
            to=list(message.to), reply_to=list(message.reply_to), headers=dict(message.headers),
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            return Sent(answer=mail.send(email))
        except mail.MailError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from None
