"""What the receipts channel keeps about a customer: the address each receipt went to, and what the
mail server answered (which may quote it). What a receipt stated (kind, dates, Message-ID, time sent)
stays: it is the business's proof that a receipt went out, and names nobody. A receipt still to be
sent is not sent at all once its address is gone. Contract: privacy/parts.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from privacy.parts import Subject, rows

from .models import Receipt

NOT_SENT = "not sent: the customer's personal data was erased"


def _receipts(subject: Subject):  # noqa: ANN202
    return Receipt.objects.filter(session_id__in=subject.session_ids)


def busy(subject: Subject) -> list[str]:
    # Locked until the erasure commits: a worker's claim skips them rather than send what is being erased.
    held = _receipts(subject).select_for_update(of=("self",)).order_by("pk")
    sending = [r for r in held if r.status == Receipt.Status.SENDING and r.lease_expires_at
               and r.lease_expires_at > timezone.now()]
    return [f"receipt {r.pk} is being sent right now: run again in a minute" for r in sending]


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    changed = 0
    for receipt in _receipts(subject).order_by("pk"):
        fields: dict[str, Any] = {"recipient": "", "last_answer": subject.redact(receipt.last_answer),
                                  "last_error": subject.redact(receipt.last_error)}
        if receipt.status == Receipt.Status.PENDING:
            fields.update(status=Receipt.Status.FAILED, last_error=NOT_SENT, lease_expires_at=None)
        if any(getattr(receipt, name) != value for name, value in fields.items()):
            changed += Receipt.objects.filter(pk=receipt.pk).update(**fields)
    return {"receipts.Receipt": changed}


def export(subject: Subject) -> dict[str, list[dict]]:
    return {"receipts": rows(_receipts(subject))}
