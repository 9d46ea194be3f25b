"""A later Cancel is always honoured: a customer who chose Nevermind or accepted an offer, then cancels
from the same page (another tab, the back button, the link again before it expires), is canceled.

The cancel is a decision of its own, recorded once like any other (a double click or a replayed POST
records nothing new): it supersedes the save, which stays on record but is no longer in force
(`session.decision` becomes the cancel), and it writes `session.canceled`, so webhooks, alerts and billing
act on it as on any cancel, and reports count the account as canceled.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from .models import CancelSession, Decision, Event
from .services import SessionClosed, decision_plan, event_record

logger = logging.getLogger(__name__)


@transaction.atomic
def decision_cancel_later(*, session: CancelSession) -> Decision:
    """Record a Cancel that supersedes the session's save, once, and return the decision now in force.

    When the decision in force is already a cancel (a double click, a replayed POST, a second tab) nothing is
    recorded and that cancel is returned. Raises SessionClosed when the page has expired, or when the session
    has no decision to supersede (a first decision goes through services.decision_record).
    """
    # The session's row lock orders this against any other decision of the session.
    locked = CancelSession.objects.select_for_update().filter(pk=session.pk).first()
    current = Decision.objects.filter(in_force_for_id=session.pk).first()
    if locked is None or current is None:
        raise SessionClosed("There is no decision on this page to change.")
    if current.kind == Decision.Kind.CANCEL:
        return current
    if locked.is_expired or locked.erased_at is not None:
        raise SessionClosed("This cancel page has expired.")
    plan = decision_plan(session=session, kind=Decision.Kind.CANCEL)
    Decision.objects.filter(pk=current.pk).update(in_force_for=None)
    connection = transaction.get_connection()
    try:
        with transaction.atomic(savepoint=not connection.features.has_select_for_update):
            # The customer's reason and words came with the save; they are the cancel's too.
            cancel = Decision.objects.create(
                session=session, in_force_for=session, kind=Decision.Kind.CANCEL, reason_id=current.reason_id,
                reason_code=current.reason_code, reason_label=current.reason_label, feedback=current.feedback,
                redirect_url=plan.redirect_url, created_at=max(plan.decided_at, current.created_at))
    except IntegrityError:
        # Only reachable where row locks are not available: a concurrent cancel won.
        return Decision.objects.get(session=session, kind=Decision.Kind.CANCEL)
    CancelSession.decision.related.set_cached_value(session, cancel)
    event = event_record(session=session, type=Event.Type.SESSION_CANCELED, decision=cancel, extra={
        "supersedes": {"action": current.kind, "offer": current.offer_code or None,
                       "decided_at": current.created_at.isoformat()}})
    logger.info("later cancel recorded", extra={"app_id": session.app.app_id, "session_id": session.public_id,
                                                "event_id": event.id, "superseded": current.kind})
    return cancel
