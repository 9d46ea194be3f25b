"""Every write of the receipts channel: per-App settings and the outbox rows (Receipt).

A receipt's life: `receipts_create_for_events` writes one row per cancel or applied offer of a customer
whose email is known (unless the App or the session's compliance rules turn receipts off), in the
event's transaction, and wakes it on commit; a worker runs `receipt_send`, which claims the row with a
compare-and-set under a lease; where billing is still carrying the change out, the row waits for its
answer (bounded), then what the receipt states (when it takes effect, its way back) is fixed on the row
with the attempt, the message goes out once under one Message-ID, and the row is finished sent, failed
(a permanent answer, kept) or pending again after a backoff; beat runs `receipts_sweep`, which wakes
rows the broker lost or whose worker died mid-send.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime

from brightback_site import mail, outbox, outbox_runs
from flows import recording
from flows import services as flow_services
from flows.models import App, CancelSession, Event
from flows.selectors import app_part

from . import rendering
from .models import Receipt, ReceiptSettings

logger = logging.getLogger(__name__)

# Seconds to wait after attempt 1, 2, 3…: the alerts channel's schedule (a dropped connection is retried
# within seconds, so the customer still gets the receipt while on the page that promised it; a 421 or a
# greylisting 451 clears in minutes; a mail server down for a weekend still gets every receipt, about
# three days).
RETRY_DELAYS: tuple[int, ...] = (2, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
KIND_FOR_EVENT: dict[str, str] = {Event.Type.SESSION_CANCELED: Receipt.Kind.CANCEL,
                                  Event.Type.OFFER_ACCEPTED: Receipt.Kind.OFFER}
HANDLER = "receipts.handlers.on_event"
# Billing's words for an action still being carried out: the receipt waits for its answer.
BILLING_UNDER_WAY = ("pending", "running")


@lru_cache(maxsize=1)
def channel() -> outbox.Channel:
    from .tasks import receipt_send_task  # tasks import this module

    return outbox.Channel(model=Receipt, task=receipt_send_task, lease_seconds=lambda: settings.RECEIPT_LEASE_SECONDS)


def retry_delay(*, attempt_number: int, rng: random.Random | None = None) -> float | None:
    return outbox.retry_delay(schedule=RETRY_DELAYS, attempt_number=attempt_number,
                              scale=settings.RECEIPT_RETRY_SCALE, rng=rng)


# --- settings -------------------------------------------------------------------------------------

def settings_for_app(*, app: App) -> ReceiptSettings:
    """The App's receipt settings; an App that never saved any gets the defaults (not written)."""
    return ReceiptSettings.objects.filter(app=app).first() or ReceiptSettings(app=app)


def _kept_settings(*, app: App) -> ReceiptSettings:
    """The App's settings, from this process's memory while the App's version stands (every save retires
    it: see apps.py)."""
    return app_part(app_id=app.app_id, part="receipts.settings",
                    load=lambda: settings_for_app(app=app))


def settings_update(*, app: App, **values: object) -> ReceiptSettings:
    """Save the App's receipt settings, validated like the admin's form."""
    prefs = settings_for_app(app=app)
    for name, value in values.items():
        setattr(prefs, name, value)
    prefs.full_clean()
    prefs.save()
    return prefs


# --- the outbox: rows written with the event ------------------------------------------------------

def language_for(locale: str) -> str:
    """The page's language for a session's locale (the snippet's), as the hosted page picks it."""
    if locale:
        try:
            return translation.get_supported_language_variant(locale.replace("_", "-").lower())
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


# Offers that change the subscription; a custom link sends the customer elsewhere and a request to talk to
# support is acknowledged by the alerts channel: neither is a change to confirm.
APPLIED_OFFERS = ("discount", "pause", "plan_change", "trial_extension", "skip_renewal")


def kind_for(*, event_type: str, offer: dict | None) -> str | None:
    """The receipt an event calls for: a cancel, or an offer applied to the subscription."""
    if event_type == Event.Type.OFFER_ACCEPTED and (not offer or offer.get("type") not in APPLIED_OFFERS):
        return None
    return KIND_FOR_EVENT.get(event_type)


def wanted(*, session: CancelSession, prefs: ReceiptSettings) -> str | None:
    """The customer's address when a receipt goes to them: their email is known, the App sends receipts,
    and the session's compliance rules do not turn them off (a rule without `receipt` leaves them on)."""
    address = rendering.email_address(session.email)
    if address is None or not prefs.enabled:
        return None
    rules = session.compliance if isinstance(session.compliance, dict) else {}
    return address if rules.get("receipt", True) is not False else None


def receipts_create_for_events(*, events: Sequence[Event]) -> list[int]:
    """One Receipt per event that calls for one, in the caller's transaction (the event's); each is woken
    when (and only if) it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("receipts must be written in the transaction of their event")
    rows = [row for event in events if (row := _receipt_for(event)) is not None]
    if not rows:
        return []
    pks = outbox.insert(rows)
    channel().wake_on_commit(pks)
    return pks


def receipt_with_decision(*, event: Event, alias: str) -> recording.Rows | object | None:
    """The receipt of a decision's event (unsaved), for the decision's own statement to write
    (flows/recording.py): no INSERT of its own, and no on_event for that event; None when the event calls
    for none. The receipt is woken when the statement's transaction commits. Receipts kept in another
    database than the decision's: LATER (on_event writes it)."""
    if alias != router.db_for_write(Receipt):
        return recording.LATER
    receipt = _receipt_for(event)
    if receipt is None:
        return None

    return recording.rows_of([receipt], written=channel().wake_on_commit)


def _receipt_for(event: Event) -> Receipt | None:
    """The receipt `event` calls for (unsaved), if any."""
    kind = kind_for(event_type=event.type, offer=event.data.get("offer"))
    session = event.session if event.session_id else None
    if kind is None or session is None:
        return None
    address = wanted(session=session, prefs=_kept_settings(app=event.app))
    if address is None:
        return None
    return Receipt(app_id=event.app_id, session=session, event=event, kind=kind, recipient=address,
                   language=language_for(session.locale), created_at=event.created_at,
                   next_attempt_at=event.created_at)


@transaction.atomic
def receipt_resend(*, receipt: Receipt) -> bool:
    """Send a receipt again from the start (a fresh retry schedule and a new Message-ID; what it states
    stays). False while it is being sent, or when the customer's address was erased."""
    now = timezone.now()
    changed = outbox.start_over(
        Receipt.objects.filter(pk=receipt.pk).exclude(status=Receipt.Status.SENDING).exclude(recipient=""),
        now=now, last_error="", message_id="")
    if changed:
        channel().wake_on_commit([receipt.pk])
    return changed == 1


def receipts_sweep(*, now: datetime | None = None) -> int:
    """Wake receipts the broker lost or whose worker died; returns how many wake-ups were published."""
    return channel().sweep(now=now)


# --- what a receipt states --------------------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    effective_at: datetime | None  # None: stated in words (the App's settings)
    source: str  # Receipt.Source
    way_back_until: datetime | None  # None: no way back (an offer, or a cancel already in effect)


def _date(value: Any) -> datetime | None:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed if parsed is not None and timezone.is_aware(parsed) else None


def statement_for(*, receipt: Receipt, billing: dict | None, prefs: ReceiptSettings, now: datetime) -> Statement:
    """When the change takes effect: billing's answer when it gave one (the date a cancel ends the
    subscription, the moment an offer was applied), else the App's receipt settings. A cancel still to
    take effect gets a way back until then (or for the settings' days when no date is known)."""
    billed = _date((billing or {}).get("effective_at")) if (billing or {}).get("status") == "succeeded" else None
    if receipt.kind == Receipt.Kind.OFFER:
        return Statement(billed, Receipt.Source.BILLING if billed else Receipt.Source.SETTINGS, None)
    canceled_at = receipt.event.created_at
    if billed is not None:
        return Statement(billed, Receipt.Source.BILLING, billed if billed > now else None)
    if prefs.cancel_takes_effect == ReceiptSettings.Takes.IMMEDIATELY:
        return Statement(canceled_at, Receipt.Source.SETTINGS, None)
    return Statement(None, Receipt.Source.SETTINGS, canceled_at + timedelta(days=prefs.way_back_days))


# --- sending --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendResult:
    outcome: str  # "skipped" (not due, or someone else holds it), "waiting" (for billing), or the row's status
    retry_in: float | None = None  # seconds until the next attempt is due


def _waits_for_billing(receipt: Receipt, billing: dict | None, now: datetime) -> bool:
    if receipt.effective_source or not billing or billing.get("status") not in BILLING_UNDER_WAY:
        return False
    return now - receipt.event.created_at < timedelta(seconds=settings.RECEIPT_BILLING_WAIT_SECONDS)


def message_domain() -> str:
    """The right-hand side of our Message-IDs: the sender's domain, so they are unique to this install."""
    sender = str(settings.DEFAULT_FROM_EMAIL).rstrip(">")
    domain = sender.rpartition("@")[2].strip()
    return domain or "localhost"


# What a receipt reads, fetched with its claim (one statement, not a second read of the row).
RELATED = ("app", "session", "session__app", "session__flow", "event", "event__app", "event__session")


def receipt_send(*, receipt_id: int) -> SendResult:
    """Send one receipt if it is due and nobody holds it. Running it twice sends once: the claim is a
    compare-and-set, and a finished row is never sent again until re-sent from the admin. Every attempt
    of a row carries the same Message-ID, so a copy delivered twice (an answer lost after the server took
    it) is one message to the customer's mail client."""
    claim = channel().claim_one(receipt_id, related=RELATED)
    if not claim.rows:
        return SendResult("skipped")
    return _send_claimed(claim)


def receipts_send_due(*, receipt_id: int, eager: bool = False) -> outbox_runs.Run[SendResult]:
    """The wake-up naming `receipt_id`: send it and every other receipt due, several at once, for a few
    seconds (brightback_site.outbox_runs)."""
    return channel().run(receipt_id, handle=_send_claimed, eager=eager, related=RELATED)


def _send_claimed(claim: outbox.Claim) -> SendResult:
    receipt: Receipt = claim.rows[0]
    now = timezone.now()
    billing = flow_services.event_billing(receipt.event)
    if _waits_for_billing(receipt, billing, now):
        # Not an attempt: billing has not said yet when the change takes effect.
        outbox.finish(receipt, lease_until=claim.lease_until, status=Receipt.Status.PENDING,
                      retry_in=settings.RECEIPT_BILLING_POLL_SECONDS)
        return SendResult("waiting", settings.RECEIPT_BILLING_POLL_SECONDS)
    number = receipt.attempt_count + 1

    def finish(status: str, *, retry_in: float | None = None, **fields: Any) -> SendResult:
        done = outbox.finish(receipt, lease_until=claim.lease_until, status=status, retry_in=retry_in,
                             attempt_count=min(number, MAX_ATTEMPTS), **fields)
        if not done:
            logger.warning("receipt %s: the claim was taken over before the attempt ended; nothing recorded",
                           receipt.pk)
        elif retry_in is None and status == Receipt.Status.FAILED:
            # The customer's address and the server's answer (which may quote it) stay out of the log.
            logger.warning("receipt %s failed for good; see its page", receipt.pk,
                           extra={"receipt_id": receipt.pk, "session_id": receipt.session.public_id})
        return SendResult(receipt.status if done else "skipped", retry_in)

    if number > MAX_ATTEMPTS:
        return finish(Receipt.Status.FAILED, last_error="gave up: workers were lost during the last attempts")
    if not receipt.recipient:
        return finish(Receipt.Status.FAILED, last_error="not sent: the customer's address was erased")
    prefs = settings_for_app(app=receipt.app)
    fixed: dict[str, Any] = {"attempt_count": number}
    if not receipt.effective_source:  # worked out once: every attempt and re-send states the same
        statement = statement_for(receipt=receipt, billing=billing, prefs=prefs, now=now)
        fixed.update(effective_at=statement.effective_at, effective_source=statement.source,
                     way_back_until=statement.way_back_until)
    if not receipt.message_id:
        fixed["message_id"] = make_msgid(domain=message_domain())
    # Counted (and what it states fixed) before sending: a worker killed mid-send leaves its attempt counted.
    Receipt.objects.filter(pk=receipt.pk, status=Receipt.Status.SENDING,
                           lease_expires_at=claim.lease_until).update(**fixed)
    for name, value in fixed.items():
        setattr(receipt, name, value)
    try:
        email = rendering.email_for(receipt=receipt, prefs=prefs)
        answer = mail.send(email)
    except mail.MailError as exc:
        error = exc.message
        retry_in = None if exc.permanent else retry_delay(attempt_number=number)
    except Exception as exc:  # noqa: BLE001 - a broken template override: retried, so a fix delivers
        logger.exception("receipt %s could not be rendered", receipt.pk)
        error = f"could not render the receipt: {exc.__class__.__name__}: {exc}"
        retry_in = retry_delay(attempt_number=number)
    else:
        return finish(Receipt.Status.SUCCEEDED, last_error="", last_answer=answer, sent_at=timezone.now())
    return finish(Receipt.Status.FAILED, retry_in=retry_in, last_error=error[:2000], last_answer=error[:2000])
