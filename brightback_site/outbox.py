"""Publishing outbox rows to the broker: the fast path of the transactional outbox.

Rows are written in the transaction of what caused them and published `on_commit` through
`publish()`. A publish that fails (the broker is down, or hangs) is logged and dropped: the row is
still in the database and the channel's beat sweeper re-publishes it. A request must never fail or
wait because the broker is unavailable, so after one failure this process stops trying for
OUTBOX_PUBLISH_PAUSE_SECONDS and leaves everything to the sweeper.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from celery import Task
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_paused_until = 0.0


def _paused() -> bool:
    return time.monotonic() < _paused_until


def _pause() -> None:
    global _paused_until
    with _lock:
        _paused_until = time.monotonic() + settings.OUTBOX_PUBLISH_PAUSE_SECONDS


def resume() -> None:
    """Forget an earlier broker failure (tests, and a worker that just reconnected)."""
    global _paused_until
    with _lock:
        _paused_until = 0.0


def publish(task: Task, *, args: Sequence, countdown: float | None = None) -> bool:
    """Send one message; False (logged) when the broker did not take it. Never raises."""
    if _paused():
        return False
    try:
        task.apply_async(args=list(args), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the sweeper has the row
        _pause()
        logger.warning("broker unavailable, %s%s left to the sweeper: %s", task.name, list(args), exc)
        return False
    return True

