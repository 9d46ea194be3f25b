"""The cancel flow's lifecycle, run by beat: sessions left open past their expiry are closed (abandoned with
their event, or expired quietly when never opened), and saves whose watch window has passed are confirmed
where the customer still pays. Also what the channels report about an event's billing (event_billing).
flows.services re-exports what callers have always found there."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import hooks
from .events import event_record, event_record_many
from .models import App, CancelSession, Decision, Event

logger = logging.getLogger(__name__)


# A save is confirmed once: saves older than the watch window by more than this are not looked at
# again (a customer who canceled since is re-checked each run only within it).
SAVE_CONFIRM_LOOKBACK_DAYS = 7


def sessions_abandon_expired(*, now=None, batch: int = 500, budget_seconds: float = 180.0) -> int:  # noqa: ANN001
    """Close open sessions past their expiry, each with its `session.abandoned` event; return how many.

    A session whose page was never opened was no visit at all (the snippet posts /precancel when the
    account page loads): it closes as EXPIRED, quietly, with no event and so no webhook or alert, and is
    not counted in the number returned.

    Works in batches of `batch` sessions, one transaction each, until none is left or `budget_seconds`
    have passed (beat's task has a time limit; the next run goes on where this one stopped). Rows another
    run holds are skipped, so two runs never wait on each other.
    """
    now = now or timezone.now()
    started = time.monotonic()
    abandoned = 0
    while True:
        closed, quietly = _abandon_batch(now=now, batch=batch)
        abandoned += closed
        if closed + quietly < batch or time.monotonic() - started > budget_seconds:
            return abandoned


@transaction.atomic
def _abandon_batch(*, now: datetime, batch: int) -> tuple[int, int]:
    """Close one batch: (abandoned with their event, expired quietly unopened)."""
    # Locked rows are skipped (a decision being recorded holds its session's row), and the UPDATE is
    # guarded again by status: a session decided since the SELECT is never marked abandoned.
    found = list(CancelSession.objects.select_for_update(skip_locked=True, of=("self",))
                 .filter(status=CancelSession.Status.OPEN, expires_at__lte=now, decision__isnull=True)
                 .order_by("expires_at")[:batch])
    if not found:
        return 0, 0
    unopened = [s.pk for s in found if s.opened_at is None]
    if unopened:
        CancelSession.objects.filter(pk__in=unopened, status=CancelSession.Status.OPEN).update(
            status=CancelSession.Status.EXPIRED)
    sessions = [s for s in found if s.opened_at is not None]
    if not sessions:
        return 0, len(unopened)
    # Each App once (a batch is mostly one App's sessions), rather than joined and decrypted per row.
    apps = App.objects.in_bulk({s.app_id for s in sessions})
    for session in sessions:
        session.app = apps[session.app_id]
    pks = [s.pk for s in sessions]
    closed = CancelSession.objects.filter(pk__in=pks, status=CancelSession.Status.OPEN).update(
        status=CancelSession.Status.ABANDONED)
    if closed != len(sessions):  # cannot happen under the row locks; never record an event for a decided one
        still = set(CancelSession.objects.filter(pk__in=pks, status=CancelSession.Status.ABANDONED)
                    .values_list("pk", flat=True))
        sessions = [s for s in sessions if s.pk in still]
    for session in sessions:
        session.status = CancelSession.Status.ABANDONED
    event_record_many(type=Event.Type.SESSION_ABANDONED, sessions=sessions,
                      extras=[{"expired_at": session.expires_at.isoformat()} for session in sessions])
    return len(sessions), len(unopened)


def _canceled_since(decision: Decision) -> bool:
    """Did the same customer of the same App cancel on our page after this save?"""
    session = decision.session
    later = Decision.objects.filter(session__app_id=session.app_id, kind=Decision.Kind.CANCEL,
                                    created_at__gt=decision.created_at)
    if session.account_internal_id:
        later = later.filter(session__account_internal_id=session.account_internal_id)
    elif session.email:
        later = later.filter(session__email__iexact=session.email)
    else:
        return False
    return later.exists()


def event_billing(event: Event) -> dict | None:
    """What the billing system does about an event, from the first channel named in
    BRIGHTBACK_EVENT_BILLING that knows: {"action", "provider", "status", "error", "subscription_id"},
    the shape of a `billing.action_failed` event's `billing`, with status pending, running, succeeded,
    skipped (a dry run) or failed. For an event not recorded (a test alert's made-up one), what it would
    do. None when no channel does anything about it, or when the one that does fails to say: a message
    about the event goes out without it rather than not at all."""
    for report in hooks.named(tuple(settings.BRIGHTBACK_EVENT_BILLING)):
        try:
            found = report(event)
        except Exception:
            logger.exception("%s failed for event %s", report.__qualname__, event.pk)
            continue
        if found:
            return found
    return None


def _still_saved(decision: Decision) -> bool | None:
    """What the channels named in BRIGHTBACK_SAVE_CHECKS know (the billing system: is the customer
    still paying?): False as soon as one says no, True when one says yes, None when none can tell."""
    verdict = None
    for check in hooks.named(tuple(settings.BRIGHTBACK_SAVE_CHECKS)):
        answer = check(decision)
        if answer is False:
            return False
        if answer is True:
            verdict = True
    return verdict


def saves_confirm_due(*, now=None) -> int:  # noqa: ANN001
    """Record `save.confirmed` for saved customers (nevermind or an accepted offer) whose watch window
    (SAVE_WATCH_DAYS) has passed, who have not canceled on our page since, and whom the billing system
    (where the App is connected) still shows as paying; return how many. Each session gets the event
    once (the Event table's unique key), however often beat runs."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.SAVE_WATCH_DAYS)
    due = (Decision.objects
           .filter(kind__in=[Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT], in_force_for__isnull=False,
                   created_at__lte=cutoff,
                   created_at__gt=cutoff - timedelta(days=SAVE_CONFIRM_LOOKBACK_DAYS))
           .exclude(session__events__type=Event.Type.SAVE_CONFIRMED)
           .select_related("session", "session__app", "offer").order_by("created_at"))
    confirmed = 0
    for decision in due.iterator(chunk_size=500):
        if _canceled_since(decision) or _still_saved(decision) is False:
            continue
        try:
            with transaction.atomic():
                event_record(session=decision.session, type=Event.Type.SAVE_CONFIRMED, decision=decision,
                             extra={"saved_at": decision.created_at.isoformat(),
                                    "watch_days": settings.SAVE_WATCH_DAYS})
        except IntegrityError:
            continue  # a concurrent run recorded it first
        confirmed += 1
    return confirmed
