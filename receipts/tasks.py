"""Celery tasks of the receipts channel. Thin: ids in, one service call.

Retries are scheduled in the database (Receipt.next_attempt_at, bounded by services.RETRY_DELAYS)
rather than with Celery's own retry, so a re-send, a sweep or a lost message all end up in the same
place: a due row that the next wake-up claims.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from brightback_site import outbox, outbox_runs

from . import services

logger = logging.getLogger(__name__)

# One SMTP conversation, each step bounded by its timeout, plus rendering and billing's answer, started
# within a run's time.
SOFT_TIME_LIMIT = 2 * settings.EMAIL_TIMEOUT + 30 + outbox_runs.RUN_SECONDS
TIME_LIMIT = SOFT_TIME_LIMIT + 10


@shared_task(name="receipts.send", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT, max_retries=0, ignore_result=True)
def receipt_send_task(self, receipt_id: int) -> int:  # noqa: ANN001
    """Send this receipt and whatever else is due (a run); how many were tried."""
    try:
        done = services.receipts_send_due(receipt_id=receipt_id, eager=bool(self.request.is_eager))
    except Exception:
        # Parked, not lost: the claims' leases run out and the sweeper wakes the rows again.
        logger.exception("receipt run from %s crashed", receipt_id)
        return 0
    return len(done.results)


@shared_task(name="receipts.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120,
             time_limit=150, max_retries=0, ignore_result=True)
def receipts_sweep() -> int:
    # Beat runs it again shortly, so a failed sweep needs no retry of its own.
    return outbox.run_alone("receipts.sweep", seconds=150, job=services.receipts_sweep)
