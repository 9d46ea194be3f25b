"""What the alerts channel keeps about a customer: each message's facts (a copy of the event), the
customer's own address on the messages sent to them, and what the mail server or Slack answered.
Messages are rendered from those facts at each attempt, never stored, so scrubbing the facts scrubs the
message. A team alert still pending goes out scrubbed; a message to the customer still pending is not
sent at all (its address is gone). Contract: privacy/parts.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from flows.privacy import event_data_scrubbed
from privacy.parts import Subject, rows

from .models import AlertDelivery

NOT_SENT = "not sent: the customer's personal data was erased"


def _deliveries(subject: Subject):  # noqa: ANN202
    return AlertDelivery.objects.filter(event__session_id__in=subject.session_ids)


def busy(subject: Subject) -> list[str]:
    # Locked until the erasure commits: a worker's claim skips them rather than send what is being erased.
    held = _deliveries(subject).select_for_update(of=("self",)).order_by("pk")
    sending = [d for d in held if d.status == AlertDelivery.Status.SENDING and d.lease_expires_at
               and d.lease_expires_at > timezone.now()]
    return [f"alert {d.pk} ({d.get_kind_display()}) is being sent right now: run again in a minute" for d in sending]


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    changed = 0
    for delivery in _deliveries(subject).order_by("pk"):
        fields: dict[str, Any] = {
            "data": event_data_scrubbed(delivery.data, subject),
            "recipients": [r for r in delivery.recipients if str(r).lower() not in subject.emails],
            "last_answer": subject.redact(delivery.last_answer),
            "last_error": subject.redact(delivery.last_error),
        }
        if delivery.status == AlertDelivery.Status.PENDING and not fields["recipients"] \
                and delivery.kind != AlertDelivery.Kind.SLACK:
            fields.update(status=AlertDelivery.Status.FAILED, last_error=NOT_SENT, lease_expires_at=None)
        if any(getattr(delivery, name) != value for name, value in fields.items()):
            changed += AlertDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return {"alerts.AlertDelivery": changed}


def export(subject: Subject) -> dict[str, list[dict]]:
    # The Slack URL is a secret of the App's, not something about the customer.
    return {"deliveries": rows(_deliveries(subject), exclude=("slack_webhook_url",))}
