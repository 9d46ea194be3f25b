"""The billing channel's part of a session's timeline (settings.BRIGHTBACK_TIMELINE_ENTRIES): each
action, each of its attempts, and a Retry button on a failed one."""

from __future__ import annotations

from django.urls import reverse
from django.utils.dateparse import parse_datetime

from flows.models import CancelSession
from flows.timeline import Entry

from .models import BillingAction
from .selectors import actions_for_session

STATUS: dict[str, str] = {BillingAction.Status.SUCCEEDED: "ok", BillingAction.Status.FAILED: "failed",
                          BillingAction.Status.SKIPPED: "ok"}
ATTEMPT_STATUS = {"succeeded": "ok", "skipped": "ok", "retrying": "failed", "failed": "failed",
                  "interrupted": "failed"}


def timeline_entries(session: CancelSession) -> list[Entry]:
    entries = []
    for action in actions_for_session(session_id=session.pk):
        url = reverse("admin:billing_billingaction_change", args=[action.pk])
        retry = (("Retry", reverse("admin:billing_billingaction_retry", args=[action.pk]))
                 if action.status == BillingAction.Status.FAILED else None)
        outcome = action.summary or action.last_error or action.get_status_display()
        entries.append(Entry(at=action.created_at, source="billing", url=url, action=retry,
                             title=f"Billing: {action.get_kind_display().lower()} in {action.get_provider_display()}"
                                   + (" (dry run)" if action.dry_run else ""),
                             detail=f"{action.get_status_display()}: {outcome}",
                             raw=action.error_detail if action.status != BillingAction.Status.SUCCEEDED else "",
                             status=STATUS.get(action.status, "pending")))
        for attempt in action.log:
            at = parse_datetime(attempt.get("at", ""))
            if at is None:
                continue
            entries.append(Entry(at=at, source="billing", url=url, title=f"Billing attempt {attempt.get('attempt')}",
                                 detail=f"{attempt.get('outcome')}: {attempt.get('detail', '')}",
                                 raw=str(attempt.get("raw") or ""),
                                 status=ATTEMPT_STATUS.get(attempt.get("outcome", ""), "pending")))
    return entries
