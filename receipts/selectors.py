"""Reads of the receipts channel."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from flows.models import CancelSession, Decision, Event

from .models import Receipt
from .services import HANDLER, kind_for, settings_for_app, wanted


def receipts_for_session(session: CancelSession) -> QuerySet[Receipt]:
    """Every receipt of one session, oldest first: each row has `kind` (cancel, offer), `status`
    (pending, sending, succeeded, failed), `message_id` (the Message-ID it went out under, empty until
    its first attempt) and `sent_at` (when the mail server accepted it; None until then). The evidence of
    a session reads these."""
    return Receipt.objects.filter(session_id=session.pk).order_by("created_at", "pk")


def receipt_promised(session: CancelSession, decision: Decision) -> bool:
    """BRIGHTBACK_CUSTOMER_EMAILS: will the customer get a receipt about this decision? Yes when one
    was written for it, or (the page rendered before the event's row is read) when the channel is on and
    the customer, the App and the session's rules call for one."""
    offer = {"code": decision.offer_code, "type": decision.offer.kind} if decision.offer is not None else None
    events: dict[str, str] = {Decision.Kind.CANCEL: Event.Type.SESSION_CANCELED,
                              Decision.Kind.ACCEPT: Event.Type.OFFER_ACCEPTED}
    event_type = events.get(decision.kind, "")
    kind = kind_for(event_type=event_type, offer=offer)
    if kind is None:
        return False
    if Receipt.objects.filter(session_id=session.pk, kind=kind).exists():
        return True
    if HANDLER not in settings.BRIGHTBACK_EVENT_HANDLERS:
        return False
    return wanted(session=session, prefs=settings_for_app(app=session.app)) is not None
