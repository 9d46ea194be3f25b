"""Every write of the privacy concern: erasing one customer, and the retention period's nightly scrub.

Both go through each app's `privacy` module (privacy/parts.py): erasing asks every app first whether a
row of the customer's must not change now (a billing action still to be carried out needs the
subscription it names), and then, in one transaction, has each app remove the personal data of its rows
and say how many it changed. The counts reports are made of stay; the daily rollups are not touched.
Running either again changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from flows import privacy as flows_privacy
from flows.models import App, CancelSession

from . import selectors
from .parts import Subject

logger = logging.getLogger(__name__)


class CustomerBusy(Exception):
    """Something of the customer's is being carried out right now; nothing was erased."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class Erasure:
    counts: dict[str, int]
    sessions: int
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(self.counts.values())


def _busy(subject: Subject) -> list[str]:
    return [reason for _label, module in selectors.parts() for reason in module.busy(subject)]


def _erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _label, module in selectors.parts():
        counts.update(module.erase(subject, now=now))
    return counts


def customer_erase(*, app: App, email: str = "", account_id: str = "") -> Erasure:
    """Remove the personal data of one customer of the App, found by email or account id, everywhere it
    is kept; return the rows changed per table. Raises CustomerBusy (and changes nothing) while a row of
    theirs is being carried out."""
    if not (email.strip() or account_id.strip()):
        raise ValueError("an email or an account id is needed")
    with transaction.atomic():
        # Sessions are locked by flows' part; the App row too, so two erasures of one App run one at a time.
        App.objects.select_for_update().filter(pk=app.pk).first()
        subject = selectors.customer(app=app, email=email, account_id=account_id)
        # No decision can be recorded on them (and no billing action written) between the check and the erasure.
        list(CancelSession.objects.select_for_update().filter(pk__in=subject.session_ids).values_list("pk"))
        reasons = _busy(subject)
        if reasons:
            raise CustomerBusy(reasons)
        counts = _erase(subject, now=timezone.now())
    logger.info("customer erased", extra={"app_id": app.app_id, "sessions": len(subject.session_ids),
                                          "rows_changed": sum(counts.values())})
    return Erasure(counts=counts, sessions=len(subject.session_ids), notes=flows_privacy.mentions(subject))


# --- the retention period -----------------------------------------------------------------------

def sessions_scrub_expired(*, now: datetime | None = None, batch: int = 200, budget_seconds: float = 1500.0) -> int:
    """Remove the personal data of sessions older than SESSION_RETENTION_DAYS (0: kept for good), in
    batches of `batch` sessions, one transaction each, until none is left or `budget_seconds` have passed
    (the next night goes on). Sessions with something still being carried out wait for a later night.
    Returns how many sessions were scrubbed."""
    days = settings.SESSION_RETENTION_DAYS
    if not days:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    started, after, scrubbed = time.monotonic(), 0, 0
    while time.monotonic() - started < budget_seconds:
        done, after, more = _scrub_batch(cutoff=cutoff, after=after, batch=batch, now=now)
        scrubbed += done
        if not more:
            break
    if scrubbed:
        logger.info("old sessions scrubbed", extra={"sessions": scrubbed, "retention_days": days})
    return scrubbed


@transaction.atomic
def _scrub_batch(*, cutoff: datetime, after: int, batch: int, now: datetime) -> tuple[int, int, bool]:
    sessions = list(CancelSession.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(created_at__lt=cutoff, erased_at__isnull=True, pk__gt=after).order_by("pk")[:batch])
    if not sessions:
        return 0, after, False
    subjects = [selectors.subject_of(sessions)]
    if _busy(subjects[0]):
        # Rare: find the busy ones and leave them for a later night.
        subjects = [subject for subject in (selectors.subject_of([s]) for s in sessions) if not _busy(subject)]
    for subject in subjects:
        _erase(subject, now=now)
    return sum(len(s.session_ids) for s in subjects), sessions[-1].pk, len(sessions) == batch
