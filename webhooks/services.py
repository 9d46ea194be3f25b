"""Every write of the webhooks channel: endpoints, the outbox rows (Delivery) and their attempts.

A delivery's life: `deliveries_create_for_event` writes it in the event's transaction and publishes
it on commit; a worker runs `delivery_attempt`, which claims it with a compare-and-set, records the
attempt before and after the POST, and either finishes it or schedules the next attempt; beat runs
`deliveries_sweep`, which re-publishes whatever the broker lost.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from brightback_site import outbox
from flows import ids
from flows.models import Event

from . import signing, transport
from .models import Delivery, DeliveryAttempt, Endpoint

logger = logging.getLogger(__name__)

# Seconds to wait after attempt 1, 2, 3…: the Standard Webhooks schedule (immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h), continued with 10-hour steps so retries span about three days.
RETRY_DELAYS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1  # each delay is stretched by up to 10%, so receivers recovering from an outage are not stampeded
RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRY_AFTER_MAX = 24 * 3600
# A message may reach the worker a little before its row is due (clocks, ETA rounding).
EARLY_TOLERANCE = timedelta(seconds=1)
TEST_EVENT_TYPE = "webhook.test"


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "skipped" (not ours to send), or a DeliveryAttempt.Outcome value
    retry_in: float | None = None  # seconds until the next attempt is due


# --- payloads -----------------------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(*, event_type: str, created_at: datetime, data: dict) -> dict:
    """The JSON body of DESIGN §5: the same on every attempt."""
    return {"type": event_type, "timestamp": _iso(created_at), "data": data}


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


def retry_delay(*, attempt_number: int, retry_after: float | None = None,
                rng: random.Random | None = None) -> float | None:
    """Seconds before the attempt after `attempt_number`, or None when the schedule is over.

    A Retry-After longer than the schedule's step is honoured (up to a day). Everything is multiplied
    by WEBHOOK_RETRY_SCALE, which tests use to compress time.
    """
    if attempt_number < 1 or attempt_number > len(RETRY_DELAYS):
        return None
    delay = float(RETRY_DELAYS[attempt_number - 1])
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    delay *= 1 + (rng or random).uniform(0, JITTER)
    return delay * settings.WEBHOOK_RETRY_SCALE


# --- the outbox: rows written with the event ----------------------------------------------------

def deliveries_create_for_event(*, event: Event) -> list[int]:
    """One Delivery per active endpoint of the event's App that wants its type, in the caller's
    transaction; published when (and only if) it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("deliveries must be written in the transaction of their event")
    endpoints = [e for e in Endpoint.objects.filter(app_id=event.app_id, is_active=True)
                 .only("id", "event_types") if e.wants(event.type)]
    if not endpoints:
        return []
    payload = webhook_body(event_type=event.type, created_at=event.created_at, data=event.data)
    rows = Delivery.objects.bulk_create([
        Delivery(endpoint=endpoint, event=event, message_id=event.id, event_type=event.type,
                 payload=payload, next_attempt_at=event.created_at, created_at=event.created_at)
        for endpoint in endpoints
    ])
    delivery_ids = [row.pk for row in rows]
    transaction.on_commit(partial(deliveries_publish, delivery_ids))
    return delivery_ids


def deliveries_publish(delivery_ids: list[int]) -> int:
    """Hand deliveries to the broker; what it refuses stays pending for the sweeper."""
    from .tasks import webhook_deliver  # tasks import this module

    return outbox.publish_each(webhook_deliver, delivery_ids)


def deliveries_sweep(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Re-publish deliveries the broker lost: pending well past their due time, or claimed by a
    worker whose lease ran out (it was killed). Each row is re-published at most once per grace
    period, so a long queue is not flooded with copies. Returns how many were published."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_PUBLISH_GRACE_SECONDS)
    stale = (Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace)
             | Q(status=Delivery.Status.SENDING, lease_expires_at__lt=now))
    not_recently_swept = Q(swept_at__isnull=True) | Q(swept_at__lte=now - grace)
    delivery_ids = list(Delivery.objects.filter(stale & not_recently_swept)
                        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    if not delivery_ids:
        return 0
    Delivery.objects.filter(pk__in=delivery_ids).update(swept_at=now)
    published = deliveries_publish(delivery_ids)
    logger.info("webhook sweep: %d stale deliveries, %d re-published", len(delivery_ids), published)
    return published


# --- one attempt --------------------------------------------------------------------------------

def delivery_attempt(*, delivery_id: int) -> AttemptResult:
    """Send a delivery once if it is due and nobody else holds it. Safe to run any number of times:
    the claim is a compare-and-set, and a finished delivery is never sent again (until redelivered)."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    claimed = (
        Delivery.objects.filter(pk=delivery_id)
        .filter(Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now + EARLY_TOLERANCE)
                | Q(status=Delivery.Status.SENDING, lease_expires_at__lt=now))
        .update(status=Delivery.Status.SENDING, lease_expires_at=lease_until,
                attempt_count=F("attempt_count") + 1, updated_at=now)
    )
    if claimed != 1:
        return AttemptResult("skipped")
    delivery = Delivery.objects.select_related("endpoint", "endpoint__app").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if delivery.attempt_count > 1:
        # A previous claim whose worker died mid-POST: the receiver may or may not have it.
        DeliveryAttempt.objects.filter(delivery=delivery, outcome=DeliveryAttempt.Outcome.IN_PROGRESS).update(
            outcome=DeliveryAttempt.Outcome.INTERRUPTED, error="the worker was lost during this attempt")
    finish = partial(_finish, delivery=delivery, lease_until=lease_until)
    if not endpoint.is_active and not delivery.is_test:
        return finish(outcome=DeliveryAttempt.Outcome.FAILED, now=now, error="endpoint disabled")
    if delivery.attempt_count > MAX_ATTEMPTS:
        return finish(outcome=DeliveryAttempt.Outcome.FAILED, now=now,
                      error="gave up: workers were lost during the last attempts")

    body = body_bytes(delivery.payload)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            secrets=endpoint.signing_secrets(now=now), msg_id=delivery.message_id, timestamp=timestamp, body=body),
    }
    if endpoint.send_hub_signature:
        headers["X-Hub-Signature"] = signing.hub_signature(secret=endpoint.secret, body=body)
    attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempt_count,
                                             url=endpoint.url, started_at=now)
    try:
        answer = transport.post(endpoint.url, body=body, headers=headers,
                                timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except transport.TransportError as exc:
        answer, error, permanent = None, exc.message, exc.permanent
    else:
        error, permanent = "", False
        attempt.status_code = answer.status_code
        attempt.response_body = answer.body_head
        attempt.duration_ms = answer.duration_ms
        if 300 <= answer.status_code < 400:
            error = f"HTTP {answer.status_code}: redirects are not followed"
        elif answer.status_code == 410:
            error, permanent = "HTTP 410 Gone: the endpoint asked us to stop", True
        elif not 200 <= answer.status_code < 300:
            error = f"HTTP {answer.status_code}"
    if attempt.duration_ms is None:
        attempt.duration_ms = round((timezone.now() - now).total_seconds() * 1000)
    attempt.error = error
    done_at = timezone.now()

    if answer is not None and not error:
        attempt.outcome = DeliveryAttempt.Outcome.SUCCEEDED
        attempt.save(update_fields=["status_code", "response_body", "duration_ms", "error", "outcome"])
        if endpoint.failing_since is not None and not delivery.is_test:
            Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return finish(outcome=attempt.outcome, now=done_at, status_code=answer.status_code)

    retry_in = None
    if not permanent and not delivery.is_test:
        retry_in = retry_delay(attempt_number=delivery.attempt_count,
                               retry_after=answer.retry_after if answer is not None
                               and answer.status_code in RETRY_AFTER_STATUSES else None)
    attempt.outcome = DeliveryAttempt.Outcome.RETRYING if retry_in is not None else DeliveryAttempt.Outcome.FAILED
    attempt.save(update_fields=["status_code", "response_body", "duration_ms", "error", "outcome"])
    result = finish(outcome=attempt.outcome, now=done_at, retry_in=retry_in, error=error,
                    status_code=answer.status_code if answer is not None else None)
    if not delivery.is_test:
        _endpoint_failed(endpoint=endpoint, now=done_at, error=error,
                         gone=answer is not None and answer.status_code == 410)
    return result


def _finish(*, delivery: Delivery, lease_until: datetime, outcome: str, now: datetime,
            retry_in: float | None = None, error: str = "", status_code: int | None = None) -> AttemptResult:
    fields: dict = {"lease_expires_at": None, "swept_at": None, "last_error": error,
                    "last_status_code": status_code, "updated_at": now}
    if outcome == DeliveryAttempt.Outcome.SUCCEEDED:
        fields.update(status=Delivery.Status.SUCCEEDED, delivered_at=now)
    elif retry_in is not None:
        fields.update(status=Delivery.Status.PENDING, next_attempt_at=now + timedelta(seconds=retry_in))
    else:
        fields.update(status=Delivery.Status.FAILED)
    # Only the holder of this claim may finish it; a worker that lost its lease records nothing here.
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING,
                            lease_expires_at=lease_until).update(**fields)
    if outcome == DeliveryAttempt.Outcome.FAILED:
        logger.warning("webhook delivery %s (%s) to %s failed for good: %s", delivery.pk, delivery.message_id,
                       delivery.endpoint.url, error)
    return AttemptResult(outcome, retry_in)


def _endpoint_failed(*, endpoint: Endpoint, now: datetime, error: str, gone: bool) -> None:
    if gone:
        endpoint_disable(endpoint=endpoint, now=now, reason=f"the receiver answered 410 Gone at {_iso(now)}")
        return
    if endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        return
    if now - endpoint.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        endpoint_disable(endpoint=endpoint, now=now,
                         reason=f"every attempt failed since {_iso(endpoint.failing_since)} (last: {error})")


# --- endpoints ----------------------------------------------------------------------------------

def endpoint_disable(*, endpoint: Endpoint, reason: str, now: datetime | None = None) -> bool:
    """Stop sending to an endpoint and tell the App's team. False if it was already disabled."""
    now = now or timezone.now()
    note = f"webhook.endpoint_disabled: {reason}"
    changed = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=note, updated_at=now)
    if changed != 1:
        return False
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, note
    logger.warning("webhook.endpoint_disabled endpoint=%s app=%s url=%s: %s",
                   endpoint.pk, endpoint.app.app_id, endpoint.url, reason)
    if endpoint.app.support_email:
        try:
            send_mail(
                subject=f"Webhook endpoint disabled: {endpoint.url}",
                message=(f"We stopped sending {endpoint.app.name}'s events to {endpoint.url}.\n\n"
                         f"Why: {reason}\n\nFix the receiver, then tick “active” on the endpoint in the "
                         "admin and redeliver the failed deliveries from its delivery log.\n"),
                from_email=None, recipient_list=[endpoint.app.support_email],
            )
        except Exception:  # noqa: BLE001 - the endpoint is disabled either way; the log has it
            logger.exception("could not email %s about disabled endpoint %s", endpoint.app.support_email,
                             endpoint.pk)
    return True


def endpoint_enable(*, endpoint: Endpoint) -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=True, disabled_at=None, disabled_reason="",
                                                   failing_since=None, updated_at=timezone.now())
    endpoint.refresh_from_db()


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """Give the endpoint a new secret and return it (the only time it is shown). The old secret keeps
    signing too, as a second signature, for WEBHOOK_SECRET_OVERLAP_HOURS."""
    now = now or timezone.now()
    locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    new_secret = signing.secret_new()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    locked.secret = new_secret
    locked.secret_rotated_at = now
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at",
                               "updated_at"])
    endpoint.refresh_from_db()
    return new_secret


def _test_data(*, endpoint: Endpoint, message_id: str) -> dict:
    return {
        "event_id": message_id, "app_id": endpoint.app.app_id, "session_id": ids.session_id(), "test": True,
        "email": "jane@example.com",
        "account": {"internal_id": "acct_test", "billing_id": "cus_test", "plan": "pro", "value": 49},
        "subscription_id": "sub_test",
        "reason": {"code": "too-expensive", "label": "It’s too expensive"},
        "feedback": "This is a test event sent from the admin.",
        "offer": {"code": "discount-30", "type": "discount", "title": "30% off for the next 3 months",
                  "terms": {"coupon": "SAVE30", "discount_percent": 30, "discount_months": 3}},
        "custom": {"seats": 3},
        "context": {"locale": "en-US"},
    }


@transaction.atomic
def endpoint_send_test(*, endpoint: Endpoint) -> Delivery:
    """Queue a `webhook.test` event to one endpoint (even a disabled one, to check a fix). It is tried
    once and does not count towards the endpoint's failures."""
    message_id = ids.event_id()
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint, event=None, message_id=message_id, event_type=TEST_EVENT_TYPE, is_test=True,
        payload=webhook_body(event_type=TEST_EVENT_TYPE, created_at=now,
                             data=_test_data(endpoint=endpoint, message_id=message_id)),
        next_attempt_at=now, created_at=now,
    )
    transaction.on_commit(partial(deliveries_publish, [delivery.pk]))
    return delivery


# --- redelivery ---------------------------------------------------------------------------------

@transaction.atomic
def delivery_redeliver(*, delivery: Delivery) -> bool:
    """Start a delivery over (same webhook-id, a fresh retry schedule). False while it is being sent."""
    now = timezone.now()
    changed = (Delivery.objects.filter(pk=delivery.pk).exclude(status=Delivery.Status.SENDING)
               .update(status=Delivery.Status.PENDING, attempt_count=0, next_attempt_at=now, swept_at=None,
                       lease_expires_at=None, last_error="", updated_at=now))
    if changed:
        transaction.on_commit(partial(deliveries_publish, [delivery.pk]))
    return changed == 1
