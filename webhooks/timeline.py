"""The webhooks channel's part of a session's timeline (settings.BRIGHTBACK_TIMELINE_ENTRIES)."""

from __future__ import annotations

from django.urls import reverse

from flows.models import CancelSession
from flows.timeline import Entry

from .models import Delivery, DeliveryAttempt

STATUS = {Delivery.Status.SUCCEEDED: "ok", Delivery.Status.FAILED: "failed"}
ATTEMPT_STATUS = {DeliveryAttempt.Outcome.SUCCEEDED: "ok", DeliveryAttempt.Outcome.FAILED: "failed",
                  DeliveryAttempt.Outcome.RETRYING: "failed", DeliveryAttempt.Outcome.INTERRUPTED: "failed"}


def timeline_entries(session: CancelSession) -> list[Entry]:
    """Each delivery of the session's events, and each of its attempts."""
    deliveries = (Delivery.objects.filter(event__session=session).select_related("endpoint")
                  .prefetch_related("attempts").order_by("created_at", "id"))
    entries = []
    for delivery in deliveries:
        url = reverse("admin:webhooks_delivery_change", args=[delivery.pk])
        entries.append(Entry(at=delivery.created_at, source="webhook", url=url,
                             title=f"Webhook {delivery.event_type} queued for {delivery.endpoint.url}",
                             detail=delivery.get_status_display(), status=STATUS.get(delivery.status, "pending")))
        for attempt in sorted(delivery.attempts.all(), key=lambda a: a.number):
            answer = f"HTTP {attempt.status_code}" if attempt.status_code else (attempt.error or "no answer")
            entries.append(Entry(at=attempt.started_at, source="webhook", url=url,
                                 title=f"Webhook attempt {attempt.number} to {attempt.url}",
                                 detail=f"{attempt.get_outcome_display()}: {answer}",
                                 status=ATTEMPT_STATUS.get(attempt.outcome, "pending")))
    return entries
