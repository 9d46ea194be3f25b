"""Beat's privacy task. Thin: one service call."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="privacy.sessions_scrub_expired", acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=1740, time_limit=1800, max_retries=0, ignore_result=True)
def sessions_scrub_expired() -> int:
    # Nightly; a run cut short is finished by the next one (scrubbed sessions are not looked at again).
    return services.sessions_scrub_expired()
