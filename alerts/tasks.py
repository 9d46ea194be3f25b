"""Celery tasks of the alerts channel. Thin: ids in, one service call.

Retries are scheduled in the database (AlertDelivery.next_attempt_at, bounded by
services.RETRY_DELAYS) rather than with Celery's own retry, so a re-send, a sweep or a lost message all
end up in the same place: a due row that the next wake-up claims.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from brightback_site import outbox

from . import services

logger = logging.getLogger(__name__)

# One SMTP conversation or Slack POST, each step bounded by its timeout, plus rendering.
SOFT_TIME_LIMIT = 2 * max(settings.EMAIL_TIMEOUT, settings.ALERT_TIMEOUT_SECONDS) + 30
TIME_LIMIT = SOFT_TIME_LIMIT + 10


@shared_task(name="alerts.send", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT, max_retries=0, ignore_result=True)
def alert_send(self, delivery_id: int) -> str:  # noqa: ANN001
    """Send one alert."""
    try:
        result = services.delivery_send(delivery_id=delivery_id)
    except Exception:
        # Parked, not lost: the claim's lease runs out and the sweeper wakes the row again.
        logger.exception("alert %s crashed", delivery_id)
        return "crashed"
    outbox.publish_retry(self, args=[delivery_id], retry_in=result.retry_in)
    return result.outcome


@shared_task(name="alerts.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120,
             time_limit=150, max_retries=0, ignore_result=True)
def alerts_sweep() -> int:
    # Beat runs it again shortly, so a failed sweep needs no retry of its own.
    return outbox.run_alone("alerts.sweep", seconds=150, job=services.deliveries_sweep)
