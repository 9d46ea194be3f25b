"""One email handed to Django's email framework, and what a failure means: shared by every channel that
sends email (alerts to the team, receipts to customers), whatever EMAIL_BACKEND says (SMTP with
EMAIL_HOST and friends, the console in development, or a provider's API through django-anymail).

SMTP replies decide what a failure means: a 5xx reply is permanent and its text is kept; a 4xx reply
(421 "try again later", 451 greylisting), a refused or dropped connection and a timeout are not.
"""

from __future__ import annotations

import smtplib
import ssl

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMessage, get_connection


class MailError(Exception):
    """The message was not accepted. `message` is a plain sentence for staff, with the server's own
    answer when there was one; `permanent` is True only when the same message cannot succeed later."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {' '.join(text.split())}".strip()


def _refused(recipients: dict) -> MailError:
    answers = {address: _reply(code, text) for address, (code, text) in recipients.items()}
    permanent = all(code >= 500 for code, _text in recipients.values())
    listed = "; ".join(f"{address}: {answer}" for address, answer in answers.items())
    return MailError(f"the mail server refused the recipients ({listed})", permanent=permanent)


def where() -> str:
    """The mail server (or backend) in staff's words: 'smtp.example.com:587', 'console'."""
    if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        return f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    return settings.EMAIL_BACKEND.rsplit(".", 2)[-2]


def send(email: EmailMessage) -> str:
    """Hand one message to the configured backend once; return what it said ("accepted by …"), or raise
    MailError (never another exception) saying whether trying again can help."""
    at = where()
    try:
        sent = get_connection(fail_silently=False).send_messages([email])
    except smtplib.SMTPRecipientsRefused as exc:
        raise _refused(exc.recipients) from None
    except smtplib.SMTPResponseException as exc:
        # Sender refused, data refused, connect refused with a reply, authentication failed, …
        raise MailError(f"the mail server at {at} answered {_reply(exc.smtp_code, exc.smtp_error)}",
                        permanent=500 <= exc.smtp_code < 600) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"the mail server at {at} does not support what the settings ask: {exc}",
                        permanent=True) from None
    except smtplib.SMTPServerDisconnected as exc:
        if "timed out" in str(exc):  # smtplib reports a read timeout as a disconnection
            raise MailError(f"the mail server at {at} did not answer within {settings.EMAIL_TIMEOUT:g} s") from None
        raise MailError(f"the mail server at {at} closed the connection: {exc or 'no reason given'}") from None
    except (TimeoutError, SoftTimeLimitExceeded):
        raise MailError(f"the mail server at {at} did not answer within {settings.EMAIL_TIMEOUT:g} s") from None
    except ConnectionRefusedError:
        raise MailError(f"nothing accepts connections at {at}") from None
    except ssl.SSLError as exc:
        raise MailError(f"TLS with the mail server at {at} failed: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"could not talk to the mail server at {at}: {exc}") from None
    except BadHeaderError as exc:
        raise MailError(f"the message has an invalid header: {exc}", permanent=True) from None
    except Exception as exc:  # noqa: BLE001 - another backend's error (django-anymail's, a provider's API)
        # An HTTP API's answer, when the backend gives one: a 4xx other than 408/429 cannot succeed later.
        status = getattr(exc, "status_code", None)
        permanent = isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
        raise MailError(f"the email backend {at} failed: {exc.__class__.__name__}: {exc}"[:2000],
                        permanent=permanent) from None
    if sent != 1:
        raise MailError(f"the email backend at {at} did not send the message")
    return f"accepted by {at}"
