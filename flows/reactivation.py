"""A customer who canceled and comes back: the way back from a cancel receipt (DESIGN §4,
`session.reactivated`). A write of the cancel flow, as flows.services' are; kept apart to keep that
module short."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .models import CancelSession, Decision, Event
from .services import FlowError, event_record

logger = logging.getLogger(__name__)


class NothingToKeep(FlowError):
    """A way back was asked for a session whose customer did not cancel."""


@transaction.atomic
def session_reactivate(*, session: CancelSession) -> tuple[Event, bool]:
    """A customer who canceled comes back (their receipt's link) and keeps the subscription: record
    `session.reactivated` once, with the channels' rows (billing removes the scheduled cancel, webhooks
    and alerts hear of it). Returns the event and whether this call recorded it: a second click, a
    replayed POST or a concurrent one records nothing new.

    Raises NothingToKeep when the session's last decision is not a cancel.
    """
    # The session's row lock makes two concurrent clicks one: the second waits, then finds the event.
    session = (CancelSession.objects.select_for_update(of=("self",)).select_related("app", "flow")
               .get(pk=session.pk))
    existing = Event.objects.filter(session_id=session.pk, type=Event.Type.SESSION_REACTIVATED).first()
    if existing is not None:
        return existing, False
    decision = Decision.objects.filter(session_id=session.pk).order_by("-created_at", "-pk").first()
    if decision is None or decision.kind != Decision.Kind.CANCEL:
        raise NothingToKeep("This customer did not cancel: there is nothing to keep.")
    now = timezone.now()
    event = event_record(session=session, type=Event.Type.SESSION_REACTIVATED, decision=decision,
                         extra={"canceled_at": decision.created_at.isoformat(), "reactivated_at": now.isoformat()})
    logger.info("session reactivated", extra={"app_id": session.app.app_id, "session_id": session.public_id,
                                              "event_id": event.id})
    return event, True
