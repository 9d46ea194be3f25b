"""Celery tasks of the billing channel. Thin: ids in, one service call.

Retries are scheduled in the database (BillingAction.next_attempt_at, bounded by
services.RETRY_DELAYS) rather than with Celery's own retry, so a manual retry, a sweep and a lost
message all end up in the same place: a due row that the next message for it claims.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from brightback_site import outbox, outbox_runs

from . import services

logger = logging.getLogger(__name__)

# The longest action on one subscription makes this many provider calls, each up to the timeout: a Stripe
# plan change at renewal reads the subscription (the owner check), reads it again with its schedule and
# the price, creates the schedule, sets its phases and reads the result, then reads the subscription and
# its schedule back to record it done only when Stripe shows the change (test_retries checks the count).
# An action on several subscriptions keeps each one's result as it goes, so a takeover resumes it.
CALLS_PER_ACTION = 9
# An action is started within a run's time (brightback_site.outbox_runs).
SOFT_TIME_LIMIT = settings.BILLING_TIMEOUT_SECONDS * CALLS_PER_ACTION + 10 + outbox_runs.RUN_SECONDS
TIME_LIMIT = SOFT_TIME_LIMIT + 10


@shared_task(name="billing.execute", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT, max_retries=0, ignore_result=True)
def billing_execute(self, action_id: int) -> int:  # noqa: ANN001
    """Carry out this action and whatever else is due (a run); how many were tried."""
    try:
        done = services.actions_execute_due(action_id=action_id, eager=bool(self.request.is_eager))
    except Exception:
        # Parked, not lost: the claims' leases run out and the sweeper publishes the actions again.
        logger.exception("billing run from action %s crashed", action_id)
        return 0
    return len(done.results)


@shared_task(name="billing.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120,
             time_limit=150, max_retries=0, ignore_result=True)
def billing_sweep() -> int:
    # Beat runs it again shortly, so a failed sweep needs no retry of its own.
    return outbox.run_alone("billing.sweep", seconds=150, job=services.actions_sweep)
