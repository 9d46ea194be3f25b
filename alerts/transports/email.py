"""Email through Django's email framework: whatever EMAIL_BACKEND says (SMTP with EMAIL_HOST and
friends, the console in development, or a provider's API through django-anymail).

SMTP replies decide what a failure means: a 5xx reply is permanent and its text is kept; a 4xx reply
(421 "try again later", 451 greylisting), a refused or dropped connection and a timeout are not.
"""

from __future__ import annotations

import smtplib
import ssl

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection

from .base import Message, Sent, Transport, TransportError


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {' '.join(text.split())}".strip()


def _refused(recipients: dict) -> TransportError:
    answers = {address: _reply(code, text) for address, (code, text) in recipients.items()}
    permanent = all(code >= 500 for code, _text in recipients.values())
    listed = "; ".join(f"{address}: {answer}" for address, answer in answers.items())
    return TransportError(f"the mail server refused the recipients ({listed})", permanent=permanent)


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
        where = (f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}" if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend")
                 else settings.EMAIL_BACKEND.rsplit(".", 2)[-2])
        try:
            sent = get_connection(fail_silently=False).send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            # Sender refused, data refused, connect refused with a reply, authentication failed, …
            raise TransportError(f"the mail server at {where} answered {_reply(exc.smtp_code, exc.smtp_error)}",
                                 permanent=500 <= exc.smtp_code < 600) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(f"the mail server at {where} does not support what the settings ask: {exc}",
                                 permanent=True) from None
        except smtplib.SMTPServerDisconnected as exc:
            if "timed out" in str(exc):  # smtplib reports a read timeout as a disconnection
                raise TransportError(f"the mail server at {where} did not answer within "
                                     f"{settings.EMAIL_TIMEOUT:g} s") from None
            raise TransportError(f"the mail server at {where} closed the connection: {exc or 'no reason given'}"
                                 ) from None
        except (TimeoutError, SoftTimeLimitExceeded):
            raise TransportError(f"the mail server at {where} did not answer within {settings.EMAIL_TIMEOUT:g} s"
                                 ) from None
        except ConnectionRefusedError:
            raise TransportError(f"nothing accepts connections at {where}") from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS with the mail server at {where} failed: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"could not talk to the mail server at {where}: {exc}") from None
        except BadHeaderError as exc:
            raise TransportError(f"the message has an invalid header: {exc}", permanent=True) from None
        except Exception as exc:  # noqa: BLE001 - another backend's error (django-anymail's, a provider's API)
            # An HTTP API's answer, when the backend gives one: a 4xx other than 408/429 cannot succeed later.
            status = getattr(exc, "status_code", None)
            permanent = isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
            raise TransportError(f"the email backend {where} failed: {exc.__class__.__name__}: {exc}"[:2000],
                                 permanent=permanent) from None
        if sent != 1:
            raise TransportError(f"the email backend at {where} did not send the message")
        return Sent(answer=f"accepted by {where}")
