"""Beat's lifecycle tasks for the cancel flow. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="flows.sessions_expire", acks_late=True, reject_on_worker_lost=True, soft_time_limit=240,
             time_limit=300, max_retries=0, ignore_result=True)
def sessions_expire() -> int:
    # Beat runs it every minute: a failed run is simply picked up by the next one.
    return services.sessions_abandon_expired()


@shared_task(name="flows.saves_confirm", acks_late=True, reject_on_worker_lost=True, soft_time_limit=1800,
             time_limit=1900, max_retries=0, ignore_result=True)
def saves_confirm() -> int:
    return services.saves_confirm_due()
