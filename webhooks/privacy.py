"""What the webhooks channel keeps about a customer: each delivery's body (a copy of the event) and each
attempt's answer. Erasing scrubs the body as flows scrubs the event (a delivery still pending goes out
scrubbed: the business learns the event happened, not who it was), empties the receivers' answers (a
receiver may echo the body) and redacts the errors. Contract: privacy/parts.py."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from flows.privacy import event_data_scrubbed
from privacy.parts import Subject, rows

from .models import Delivery, DeliveryAttempt


def _deliveries(subject: Subject):  # noqa: ANN202
    return Delivery.objects.filter(event__session_id__in=subject.session_ids)


def busy(subject: Subject) -> list[str]:
    # Locked until the erasure commits: a worker's claim skips them rather than send what is being erased.
    held = _deliveries(subject).select_for_update(of=("self",)).order_by("pk")
    sending = [d for d in held if d.status == Delivery.Status.SENDING and d.lease_expires_at
               and d.lease_expires_at > timezone.now()]
    return [f"webhook delivery {d.message_id} to endpoint {d.endpoint_id} is being sent right now: run again in a "
            f"minute" for d in sending]


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    counts = {"webhooks.Delivery": 0, "webhooks.DeliveryAttempt": 0}
    for delivery in _deliveries(subject).order_by("pk"):
        payload = dict(delivery.payload)
        payload["data"] = event_data_scrubbed(payload.get("data") or {}, subject)
        payload = subject.redact_json(payload)
        last_error = subject.redact(delivery.last_error)
        if payload != delivery.payload or last_error != delivery.last_error:
            counts["webhooks.Delivery"] += Delivery.objects.filter(pk=delivery.pk).update(
                payload=payload, last_error=last_error)
    for attempt in DeliveryAttempt.objects.filter(delivery__in=_deliveries(subject)).order_by("pk"):
        error = subject.redact(attempt.error)
        if attempt.response_body or error != attempt.error:
            counts["webhooks.DeliveryAttempt"] += DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                response_body="", error=error)
    return counts


def export(subject: Subject) -> dict[str, list[dict]]:
    return {"deliveries": rows(_deliveries(subject)),
            "attempts": rows(DeliveryAttempt.objects.filter(delivery__in=_deliveries(subject)))}
