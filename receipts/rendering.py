"""What a receipt says, in the customer's language: what was canceled or changed, when it takes effect,
the reference (the session id), how to reach support and, for a cancel still to take effect, the way
back. Reads only: the worker's send and the admin's preview both go through `email_for`.

Templates live in templates/receipts/<kind>/{subject.txt,body.txt,body.html}; a file at
templates/receipts/<app_id>/<kind>/<name> replaces the default for that App only.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.template.loader import select_template
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from flows.models import App, CancelSession

from . import links
from .models import Receipt, ReceiptSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def email_address(value: Any) -> str | None:
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        return None
    try:
        validate_email(value)
    except ValidationError:
        return None
    return value


def one_line(value: str, *, limit: int = 250) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def customer_zone(session: CancelSession) -> zoneinfo.ZoneInfo | Any:
    """The customer's time zone (the snippet's context.timezone), else the team's (TIME_ZONE)."""
    context = session.data.get("context") if isinstance(session.data, dict) else None
    name = context.get("timezone") if isinstance(context, dict) else None
    if isinstance(name, str) and name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_current_timezone()


def when(moment: datetime | None, zone: Any, *, with_time: bool = False) -> str:
    """A date (and time, with its zone) in the active language's format, in the customer's zone."""
    if moment is None:
        return ""
    local = timezone.localtime(moment, zone)
    if not with_time:
        return date_format(local, "DATE_FORMAT")
    return f"{date_format(local, 'DATE_FORMAT')}, {date_format(local, 'TIME_FORMAT')} ({local.tzname()})"


def way_back_url(receipt: Receipt) -> str:
    """The signed link that keeps the subscription, valid until the cancel takes effect; empty when there
    is no way back (an offer, a cancel already in effect) or no SITE_URL to build it on."""
    if receipt.kind != Receipt.Kind.CANCEL or receipt.way_back_until is None or not settings.SITE_URL:
        return ""
    token = links.way_back_token(session_id=receipt.session.public_id, until=receipt.way_back_until)
    return f"{settings.SITE_URL}{reverse('receipts:way_back', args=[token])}"


def support_of(app: App, prefs: ReceiptSettings) -> dict[str, str]:
    return {"support_email": email_address(app.support_email) or "", "support_url": prefs.support_url}


def context_for(*, receipt: Receipt, prefs: ReceiptSettings) -> dict[str, Any]:
    """Everything the templates may say (in the active language: call inside translation.override)."""
    session, event = receipt.session, receipt.event
    zone = customer_zone(session)
    offer = event.data.get("offer") if isinstance(event.data.get("offer"), dict) else None
    account = session.account
    now = timezone.now()
    return {
        "app_name": receipt.app.name,
        "kind": receipt.kind,
        "reference": session.public_id,
        "occurred_at": when(event.created_at, zone, with_time=True),
        "plan": one_line(str(account.get("plan") or ""), limit=80),
        "subscription_id": one_line(session.subscription_id, limit=120),
        "offer_title": one_line(str((offer or {}).get("title") or (offer or {}).get("code") or ""), limit=200),
        "effective_on": when(receipt.effective_at, zone),
        "effective_past": receipt.effective_at is not None and receipt.effective_at <= now,
        "effective_words": prefs.effective_text,
        "way_back_url": way_back_url(receipt),
        "way_back_until": when(receipt.way_back_until, zone),
        **support_of(receipt.app, prefs),
    }


def _template(app: App, kind: str, name: str) -> Any:
    return select_template([f"receipts/{app.app_id}/{kind}/{name}", f"receipts/{kind}/{name}"])


def email_for(*, receipt: Receipt, prefs: ReceiptSettings) -> EmailMultiAlternatives:
    """The receipt as it goes out: subject, text and HTML parts, our Message-ID, replies to support."""
    with translation.override(receipt.language or settings.LANGUAGE_CODE):
        context = context_for(receipt=receipt, prefs=prefs)
        subject = one_line(_template(receipt.app, receipt.kind, "subject.txt").render(context))
        text = _template(receipt.app, receipt.kind, "body.txt").render(context)
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        html = _template(receipt.app, receipt.kind, "body.html").render(context)
    headers = {"X-Cancel-Flow-Session": receipt.session.public_id}
    if receipt.message_id:
        headers["Message-ID"] = receipt.message_id
    support = context["support_email"]
    email = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL,
                                   to=[receipt.recipient], reply_to=[support] if support else [], headers=headers)
    email.attach_alternative(html, "text/html")
    return email
