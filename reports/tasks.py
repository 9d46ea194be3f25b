from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="reports.refresh", acks_late=True, reject_on_worker_lost=True, time_limit=600, soft_time_limit=540,
             max_retries=0, ignore_result=True)
def refresh() -> int:
    """Rewrite the report rollups of the days that can still change. Missing a run only delays numbers:
    the next run rewrites the same days, so it is never retried."""
    return services.rollups_refresh_recent()
