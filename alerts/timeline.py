"""The alerts channel's part of a session's timeline (settings.BRIGHTBACK_TIMELINE_ENTRIES): each alert
and customer message, where it went and what the mail server or Slack answered."""

from __future__ import annotations

from django.urls import reverse

from flows.models import CancelSession
from flows.timeline import Entry

from .models import AlertDelivery
from .selectors import deliveries_for_session

STATUS: dict[str, str] = {AlertDelivery.Status.SUCCEEDED: "ok", AlertDelivery.Status.FAILED: "failed"}


def timeline_entries(session: CancelSession) -> list[Entry]:
    entries = []
    for delivery in deliveries_for_session(session_id=session.pk):
        url = reverse("admin:alerts_alertdelivery_change", args=[delivery.pk])
        answer = delivery.last_error or delivery.last_answer
        entries.append(Entry(at=delivery.sent_at or delivery.created_at, source="alert", url=url,
                             title=f"{delivery.get_kind_display()} ({delivery.event_type}) to {delivery.destination}",
                             detail=f"{delivery.get_status_display()}, {delivery.attempt_count} attempt(s)"
                                    + (f": {answer}" if answer else ""),
                             status=STATUS.get(delivery.status, "pending")))
    return entries
