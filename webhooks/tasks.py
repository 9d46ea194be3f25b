"""Celery tasks of the webhooks channel. Thin: ids in, one service call.

Retries are scheduled in the database (Delivery.next_attempt_at, bounded by services.RETRY_DELAYS)
rather than with Celery's own retry, so a redelivery, a sweep or a lost message all end up in the
same place: a pending row that the next message for it claims.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from brightback_site import outbox

from . import services

logger = logging.getLogger(__name__)

# Retry messages wait in the broker as ETA messages only for short delays; longer ones are left to
# the sweeper, so no message sits unacknowledged near the broker's visibility timeout.
COUNTDOWN_MAX_SECONDS = 15 * 60
SOFT_TIME_LIMIT = settings.WEBHOOK_TIMEOUT_SECONDS + 5
TIME_LIMIT = settings.WEBHOOK_TIMEOUT_SECONDS + 10


@shared_task(name="webhooks.deliver", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT, max_retries=0, ignore_result=True)
def webhook_deliver(self, delivery_id: int) -> str:  # noqa: ANN001
    try:
        result = services.delivery_attempt(delivery_id=delivery_id)
    except Exception:
        # Parked, not lost: the claim's lease runs out and the sweeper hands the row out again.
        logger.exception("webhook delivery %s crashed", delivery_id)
        return "crashed"
    if result.retry_in is not None and result.retry_in <= COUNTDOWN_MAX_SECONDS:
        outbox.publish(self, args=[delivery_id], countdown=result.retry_in)
    return result.outcome


@shared_task(name="webhooks.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120,
             time_limit=150, max_retries=0, ignore_result=True)
def webhooks_sweep() -> int:
    # Beat runs it again shortly, so a failed sweep needs no retry of its own.
    return services.deliveries_sweep()
