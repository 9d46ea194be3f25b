from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")

app = Celery("brightback_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="outbox.sweep", acks_late=True, reject_on_worker_lost=True, soft_time_limit=120, time_limit=150,
          max_retries=0, ignore_result=True)
def outbox_sweep() -> int:
    """Every channel's sweep (OUTBOX_SWEEPS) in one message per tick: four messages each tick outnumbered
    the sweeps queue's share of busy workers, and a sweep that waits longer than its period is dropped.
    Each runs alone (outbox.run_alone); one that fails does not stop the others. Returns the wake-ups."""
    import logging

    from django.conf import settings

    woken = 0
    for name in settings.OUTBOX_SWEEPS:
        try:
            woken += int(app.tasks[name]() or 0)
        except Exception:  # noqa: BLE001 - beat runs it again shortly
            logging.getLogger(__name__).exception("%s failed", name)
    return woken


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_unsafe_start(**kwargs: object) -> None:
    # Celery logs and ignores an exception a signal handler raises; SystemExit stops the process (beat
    # takes it for a quiet shutdown, so the reason is written out first).
    import sys

    import django
    from django.core.exceptions import ImproperlyConfigured

    from .startup import refuse_unsafe_start

    django.setup()
    try:
        refuse_unsafe_start()
    except ImproperlyConfigured as exc:
        (sys.__stderr__ or sys.stderr).write(f"{exc}\n")  # celery beat redirects sys.stderr to its logger
        raise SystemExit(1) from None


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_database_connections(task=None, **kwargs: object) -> None:  # noqa: ANN001
    # What Django does around each request: keep a healthy connection for CONN_MAX_AGE, drop a
    # broken or expired one (see CELERY_DB_REUSE_MAX in settings). An eager task runs inside its
    # caller's request, whose connection is not ours to close.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.task_prerun.connect
def _note_queue_progress(task=None, **kwargs: object) -> None:  # noqa: ANN001
    # How far each queue has got, for the outbox sweeper (brightback_site.outbox.lost).
    runnable_at = getattr(getattr(task, "request", None), "runnable_at", None)
    if task is None or runnable_at is None or getattr(task.request, "is_eager", False):
        return
    from brightback_site import outbox

    outbox.queue_head_seen(outbox.queue_of(task.name), float(runnable_at))


@signals.worker_init.connect
def _note_worker_slots(sender=None, **kwargs: object) -> None:  # noqa: ANN001
    # In the worker's main process, before its pool forks: how many slots webhook runs may take here
    # (webhooks/runs.py), inherited by every pool process.
    if sender is None:
        return
    from webhooks import runs

    runs.worker_started(name=sender.hostname, concurrency=int(sender.concurrency or 1),
                        queues=list(sender.app.amqp.queues.consume_from or sender.app.amqp.queues))
