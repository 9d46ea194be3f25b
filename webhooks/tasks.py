"""Celery tasks of the webhooks channel. Thin: ids in, one service call.

Messages wake an endpoint rather than carry a delivery: the worker sends everything due to that
endpoint, so a burst of events costs a few messages, not one each. Retries are scheduled in the
database (Delivery.next_attempt_at, bounded by services.RETRY_DELAYS) rather than with Celery's own
retry, so a redelivery, a sweep or a lost message all end up in the same place: a due row that the
next wake-up of its endpoint claims.
"""

from __future__ import annotations

import logging

from celery import shared_task

from brightback_site import outbox

from . import services

logger = logging.getLogger(__name__)

# A run stops claiming after DRAIN_BUDGET_SECONDS; the attempt in flight then needs its own timeout. A
# task runs its endpoint, then goes on with endpoints waiting for its run slot while another whole run
# fits: two runs at most. A claim is held for one run only (CLAIM_HELD_AT_MOST, what the lease must
# outlast).
CLAIM_HELD_AT_MOST = services.run_seconds_at_most() + 10
SOFT_TIME_LIMIT = 2 * services.run_seconds_at_most()
TIME_LIMIT = SOFT_TIME_LIMIT + 10


@shared_task(name="webhooks.deliver", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT, max_retries=0, ignore_result=True)
def webhook_deliver(self, endpoint_id: int) -> int:  # noqa: ANN001
    """Deliver what is due to one endpoint."""
    try:
        result = services.endpoint_deliver_due(endpoint_id=endpoint_id)
    except Exception:
        # Parked, not lost: the claims' leases run out and the sweeper wakes the endpoint again.
        logger.exception("webhook delivery to endpoint %s crashed", endpoint_id)
        return 0
    # The run queued its own next look (a retry, its backoff's end) through the wake-up gate.
    return result.sent


@shared_task(name="webhooks.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120,
             time_limit=150, max_retries=0, ignore_result=True)
def webhooks_sweep() -> int:
    # Beat runs it again shortly, so a failed sweep needs no retry of its own.
    return outbox.run_alone("webhooks.sweep", seconds=150, job=services.deliveries_sweep)
