"""The receipts channel's part of a session's timeline (settings.BRIGHTBACK_TIMELINE_ENTRIES): each
receipt to the customer, under which Message-ID, and what the mail server answered."""

from __future__ import annotations

from django.urls import reverse

from flows.models import CancelSession
from flows.timeline import Entry

from .models import Receipt
from .selectors import receipts_for_session

STATUS: dict[str, str] = {Receipt.Status.SUCCEEDED: "ok", Receipt.Status.FAILED: "failed"}


def timeline_entries(session: CancelSession) -> list[Entry]:
    entries = []
    for receipt in receipts_for_session(session):
        answer = receipt.last_error or receipt.last_answer
        entries.append(Entry(
            at=receipt.sent_at or receipt.created_at, source="receipt",
            url=reverse("admin:receipts_receipt_change", args=[receipt.pk]),
            title=f"{receipt.get_kind_display()} to the customer"
                  + (f" ({receipt.message_id})" if receipt.message_id else ""),
            detail=f"{receipt.get_status_display()}, {receipt.attempt_count} attempt(s)"
                   + (f": {answer}" if answer else ""),
            status=STATUS.get(receipt.status, "pending")))
    return entries
