"""Every write of the alerts channel: rules, per-App settings and the outbox rows (AlertDelivery).

An alert's life: `deliveries_create_for_event` writes one row per destination in the event's
transaction and wakes each on commit; a worker runs `delivery_send`, which claims the row with a
compare-and-set under a lease and counts the attempt before it starts; the row's transport carries the
rendered message once, and the row is finished sent, failed (a permanent answer, kept) or pending
again after a backoff; beat runs `deliveries_sweep`, which wakes rows the broker lost or whose worker
died mid-send.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from brightback_site import outbox, outbox_runs
from flows import services as flow_services
from flows.models import App, Decision, Event
from flows.selectors import app_part

from . import rendering, transports
from .models import AlertDelivery, AlertRule, AlertSettings
from .transports import Message, TransportError

logger = logging.getLogger(__name__)

# Seconds to wait after attempt 1, 2, 3…: quick at first (a dropped connection or a Slack 5xx now and
# then is retried within seconds, so the team still hears within seconds; a 421 "try again" or a
# greylisting 451 clears in minutes; a longer Retry-After is honoured), then hours, so a mail server
# down for a weekend still gets every alert (about three days).
RETRY_DELAYS: tuple[int, ...] = (2, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
Kind = AlertDelivery.Kind
CUSTOMER_KINDS = {Kind.ACKNOWLEDGEMENT, Kind.RECEIPT}


@lru_cache(maxsize=1)
def channel() -> outbox.Channel:
    from .tasks import alert_send  # tasks import this module

    return outbox.Channel(model=AlertDelivery, task=alert_send, lease_seconds=lambda: settings.ALERT_LEASE_SECONDS)


def retry_delay(*, attempt_number: int, retry_after: float | None = None,
                rng: random.Random | None = None) -> float | None:
    """Seconds before the attempt after `attempt_number`, or None when the schedule is over; multiplied
    by ALERT_RETRY_SCALE, which tests use to compress time."""
    return outbox.retry_delay(schedule=RETRY_DELAYS, attempt_number=attempt_number, retry_after=retry_after,
                              scale=settings.ALERT_RETRY_SCALE, rng=rng)


# --- settings and rules ---------------------------------------------------------------------------

def settings_for_app(*, app: App) -> AlertSettings:
    """The App's alert settings; an App that never saved any gets the defaults (not written)."""
    return AlertSettings.objects.filter(app=app).first() or AlertSettings(app=app)


def settings_update(*, app: App, **values: object) -> AlertSettings:
    """Save the App's alert settings (customer_acknowledgement, cancellation_receipt,
    response_business_days, cancellation_effective), validated like the admin's form."""
    prefs = settings_for_app(app=app)
    for name, value in values.items():
        setattr(prefs, name, value)
    prefs.full_clean()
    prefs.save()
    return prefs


def rule_create(*, app: App, events: list[str], recipients: list[str] | None = None, slack_webhook_url: str = "",
                live_only: bool = False, position: int | None = None) -> AlertRule:
    """Validate and save a rule (ValidationError names the field at fault)."""
    if position is None:
        position = AlertRule.objects.filter(app=app).count()
    rule = AlertRule(app=app, events=list(events), recipients=list(recipients or []),
                     slack_webhook_url=slack_webhook_url, live_only=live_only, position=position)
    rule.full_clean()
    rule.save()
    return rule


# --- the outbox: rows written with the event ------------------------------------------------------

def _language(data: dict) -> str:
    context = data.get("context")
    locale = context.get("locale") if isinstance(context, dict) else None
    locale = locale if isinstance(locale, str) else ""
    if locale:
        try:
            return translation.get_supported_language_variant(locale.replace("_", "-").lower())
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


def _rows_for(*, prefs_of: Callable[[], AlertSettings | None], event_type: str, data: dict, is_test_session: bool,
              rules: list[AlertRule], emailed_elsewhere: Callable[[], bool] = lambda: False) -> list[AlertDelivery]:
    rows = []
    for rule in rules:
        if not rule.wants(event_type=event_type, is_test=is_test_session):
            continue
        if rule.recipients:
            rows.append(AlertDelivery(kind=Kind.TEAM_EMAIL, rule=rule, recipients=list(rule.recipients)))
        if rule.slack_webhook_url:
            rows.append(AlertDelivery(kind=Kind.SLACK, rule=rule, slack_webhook_url=rule.slack_webhook_url))
    if event_type not in (Event.Type.OFFER_EMAIL_REQUESTED, Event.Type.SESSION_CANCELED):
        return rows
    customer = rendering.email_address(data.get("email"))
    prefs = prefs_of() if customer else None
    if customer and prefs is not None:
        language = _language(data)
        if prefs.customer_acknowledgement and event_type == Event.Type.OFFER_EMAIL_REQUESTED:
            rows.append(AlertDelivery(kind=Kind.ACKNOWLEDGEMENT, recipients=[customer], language=language))
        # Another channel's receipt (BRIGHTBACK_CUSTOMER_EMAILS) already goes to the customer: not a second one.
        if prefs.cancellation_receipt and event_type == Event.Type.SESSION_CANCELED and not emailed_elsewhere():
            rows.append(AlertDelivery(kind=Kind.RECEIPT, recipients=[customer], language=language))
    return rows


def _rules(*, app: App) -> list[AlertRule]:
    """The App's rules, from this process's memory while the App's version stands (every save and delete
    of a rule retires it: see apps.py)."""
    return app_part(app_id=app.app_id, part="alerts.rules",
                    load=lambda: list(AlertRule.objects.filter(app_id=app.pk)))


def _saved_settings(*, app: App) -> AlertSettings | None:
    """The App's saved alert settings (None: never saved), kept like its rules."""
    return app_part(app_id=app.app_id, part="alerts.settings",
                    load=lambda: AlertSettings.objects.filter(app_id=app.pk).first())


def _customer_emailed_elsewhere(event: Event) -> bool:
    """Does another channel email the customer about this event's decision (flows' customer_email_promised:
    the receipts channel's fuller receipt)? Asked only when the App sends the alerts channel's own receipt."""
    if event.session_id is None or event.session is None:
        return False
    decision = Decision.objects.filter(session_id=event.session_id).order_by("-created_at", "-pk").first()
    return decision is not None and flow_services.customer_email_promised(session=event.session, decision=decision)


def deliveries_create_for_event(*, event: Event) -> list[int]:
    """One AlertDelivery per destination that wants the event (each rule's email recipients and its
    Slack channel; the customer's acknowledgement or receipt when the App sends them), in the caller's
    transaction; each is woken when (and only if) it commits."""
    return deliveries_create_for_events(events=[event])


def deliveries_wanted(*, event: Event) -> bool:
    """Might deliveries_create_for_event write a row for this event? Asked before the event's decision is
    written (flows/recording.py), from the App's rules and settings in memory alone: a customer's receipt
    counts as wanted without asking whether another channel emails the customer (which reads the decision)."""
    return bool(_rows_for_event(event, emailed_elsewhere=lambda: False))


def _rows_for_event(event: Event, *, emailed_elsewhere: Callable[[], bool] | None = None) -> list[AlertDelivery]:
    app = event.app
    rows = []
    for row in _rows_for(prefs_of=partial(_saved_settings, app=app), event_type=event.type,
                         data=event.data, is_test_session=bool(event.data.get("test")), rules=_rules(app=app),
                         emailed_elsewhere=emailed_elsewhere or partial(_customer_emailed_elsewhere, event)):
        row.app_id, row.event, row.event_type, row.data = event.app_id, event, event.type, event.data
        row.occurred_at = row.created_at = row.next_attempt_at = event.created_at
        rows.append(row)
    return rows


def deliveries_create_for_events(*, events: Sequence[Event]) -> list[int]:
    """deliveries_create_for_event for many events of one transaction (flows' event_record_many): each
    App's rules and settings as kept in memory, every row in one INSERT."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("alerts must be written in the transaction of their event")
    rows = [row for event in events for row in _rows_for_event(event)]
    if not rows:
        return []
    pks = outbox.insert(rows)
    channel().wake_on_commit(pks)
    return pks


@transaction.atomic
def sample_data(*, app: App, event_type: str) -> dict[str, Any]:
    """The made-up event of test alerts and their previews (rendering.sample_data), with what billing
    would do about such an event when the App is connected, as the App's real alerts say it."""
    data = rendering.sample_data(app=app, event_type=event_type)
    if "billing" not in data:
        billing = flow_services.event_billing(Event(app=app, type=event_type, data=data))
        if billing:
            data["billing"] = billing
    return data


def rule_send_test(*, rule: AlertRule, event_type: str) -> list[AlertDelivery]:
    """Queue the rule's alert for a made-up `event_type` event to its real destinations, marked as a
    test; each is tried once. It is exactly what `selectors.rule_preview` shows."""
    now = timezone.now()
    data = sample_data(app=rule.app, event_type=event_type)
    rows = []
    for row in _rows_for(prefs_of=lambda: None, event_type=event_type, data=data, is_test_session=False,
                         rules=[rule]):  # a test goes to the team only: no customer's settings needed
        if row.kind in CUSTOMER_KINDS:
            continue
        row.app_id, row.event_type, row.data, row.is_test = rule.app_id, event_type, data, True
        row.occurred_at = row.created_at = row.next_attempt_at = now
        rows.append(row)
    created = AlertDelivery.objects.bulk_create(rows)
    channel().wake_on_commit([row.pk for row in created])
    return created


@transaction.atomic
def delivery_resend(*, delivery: AlertDelivery) -> bool:
    """Send an alert again from the start (a fresh retry schedule). False while it is being sent."""
    now = timezone.now()
    changed = outbox.start_over(
        AlertDelivery.objects.filter(pk=delivery.pk).exclude(status=AlertDelivery.Status.SENDING),
        now=now, last_error="")
    if changed:
        channel().wake_on_commit([delivery.pk])
    return changed == 1


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Wake alerts the broker lost or whose worker died; returns how many wake-ups were published."""
    return channel().sweep(now=now)


# --- sending --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendResult:
    outcome: str  # "skipped" (not due, or someone else holds it), or the row's status afterwards
    retry_in: float | None = None  # seconds until the next attempt is due


def message_of(delivery: AlertDelivery) -> tuple[str, Message]:
    """The transport slug and the message of a row, rendered as its worker sends it."""
    app = delivery.app
    prefs = settings_for_app(app=app)
    session_pk = delivery.event.session_id if delivery.event_id and delivery.event else None
    # The team's messages say what billing is doing about the event as they go out; the customer's don't.
    billing = (flow_services.event_billing(delivery.event)
               if delivery.event_id and delivery.event and "billing" not in delivery.data
               and delivery.kind in (AlertDelivery.Kind.TEAM_EMAIL, AlertDelivery.Kind.SLACK) else None)
    return rendering.message_for(
        app=app, kind=delivery.kind, event_type=delivery.event_type, data=delivery.data,
        occurred_at=delivery.occurred_at, session_pk=session_pk,
        response_business_days=prefs.response_business_days, recipients=list(delivery.recipients),
        slack_webhook_url=delivery.slack_webhook_url, language=delivery.language,
        effective=prefs.cancellation_effective, event_billing=billing)


# A row's App and event are read with its claim.
RELATED = ("app", "event")


def delivery_send(*, delivery_id: int) -> SendResult:
    """Send one alert if it is due and nobody holds it. Running it twice sends once: the claim is a
    compare-and-set, and a finished row is never sent again until re-sent from the admin."""
    # Counted as it is claimed (one statement): a worker killed mid-send leaves its attempt counted.
    claim = channel().claim_one(delivery_id, count_attempt=True, related=RELATED)
    if not claim.rows:
        return SendResult("skipped")
    return _send_claimed(claim)


def deliveries_send_due(*, delivery_id: int, eager: bool = False) -> outbox_runs.Run[SendResult]:
    """The wake-up naming `delivery_id`: send it and every other alert due, several at once, for a few
    seconds (brightback_site.outbox_runs)."""
    return channel().run(delivery_id, handle=_send_claimed, eager=eager, count_attempt=True, related=RELATED)


def _send_claimed(claim: outbox.Claim) -> SendResult:
    delivery: AlertDelivery = claim.rows[0]
    number = delivery.attempt_count

    def finish(status: str, *, retry_in: float | None = None, **fields: Any) -> SendResult:
        done = outbox.finish(delivery, lease_until=claim.lease_until, status=status, retry_in=retry_in,
                             attempt_count=min(number, MAX_ATTEMPTS), **fields)
        if not done:
            logger.warning("alert %s: the claim was taken over before the attempt ended; nothing recorded",
                           delivery.pk)
        elif retry_in is None and status == AlertDelivery.Status.FAILED:
            # A customer's own address stays out of the log (and so does the server's answer, which may quote it).
            logger.warning("alert %s (%s to %s) failed for good: %s", delivery.pk, delivery.event_type,
                           "the customer" if delivery.kind in CUSTOMER_KINDS else delivery.destination,
                           "see the alert's page" if delivery.kind in CUSTOMER_KINDS else fields.get("last_error"),
                           extra={"alert_delivery_id": delivery.pk, "event_id": delivery.event_id})
        return SendResult(delivery.status if done else "skipped", retry_in)

    if number > MAX_ATTEMPTS:
        return finish(AlertDelivery.Status.FAILED, last_error="gave up: workers were lost during the last attempts")
    try:
        slug, message = message_of(delivery)
        transport = transports.get(slug)
        problems = transport.problems(message)
        if problems:
            raise TransportError("; ".join(problems), permanent=True)
        sent = transport.send(message)
    except TransportError as exc:
        error = exc.message
        retry_in = None if exc.permanent or delivery.is_test else retry_delay(attempt_number=number,
                                                                              retry_after=exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - a broken template override: retried, so a fix delivers
        logger.exception("alert %s could not be rendered", delivery.pk)
        error = f"could not render the alert: {exc.__class__.__name__}: {exc}"
        retry_in = None if delivery.is_test else retry_delay(attempt_number=number)
    else:
        return finish(AlertDelivery.Status.SUCCEEDED, last_error="", last_answer=sent.answer,
                      sent_at=timezone.now())
    return finish(AlertDelivery.Status.FAILED, retry_in=retry_in, last_error=error[:2000], last_answer=error[:2000])
