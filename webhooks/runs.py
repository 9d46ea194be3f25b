"""What keeps webhook runs from taking the slots billing and alerts need, and a run's heartbeat.

A worker consuming every queue (`make run`, compose's `worker`) shares its slots between webhook runs
and everything else. A run is short (services.DRAIN_BUDGET_SECONDS, then the endpoint is handed back
through the wake-up gate), but one POST to a receiver that hangs holds its slot for the whole timeout,
and two such receivers would hold two slots. So:

- **run slots**: webhook runs may take at most `slots_allowed()` of a worker's slots at once: all but one
  on a worker that also consumes other queues, all of them on a webhooks-only pool (WEBHOOK_RUN_SLOTS
  overrides). A run takes a slot key in the cache (`bb:webhooks:run-slot:<worker>:<n>`, an atomic
  add with a lease) before it takes its endpoint; a wake-up that finds every slot taken hands its
  endpoint back at once (it wakes it again a second later) and frees the Celery slot, so the slot that
  is always left serves billing, alerts and the sweeps within one short task's time. Slot keys expire
  with the run lease, so a killed worker's keys free themselves. Without a shared cache that answers
  (a unit test calling a service directly, a Redis restarting) runs are not capped: the cap is an
  optimisation of latency, never a condition for delivery.
- **heartbeat**: a run holds its endpoint (Endpoint.run_lease_until) and its slot key under a short
  lease (WEBHOOK_RUN_LEASE_SECONDS) that a thread renews every third of it while the run lives, however
  long its POST waits; a killed worker stops renewing, and its endpoint is taken over within the lease.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Endpoint

logger = logging.getLogger(__name__)

SLOT_KEY = "webhooks:run-slot:{worker}:{n}"
# A wake-up that found no run slot free wakes its endpoint again this much later.
NO_SLOT_RETRY_SECONDS = 1.0

# This worker's name and how many slots its runs may take; set in the worker's main process before its
# pool is forked (brightback_site.celery), 0 outside a worker.
@dataclass
class _Worker:
    name: str = ""
    slots: int = 0


_worker = _Worker()


def slots_allowed(*, concurrency: int, queues: Iterable[str]) -> int:
    """How many of a worker's `concurrency` slots webhook runs may take, given the queues it consumes."""
    if settings.WEBHOOK_RUN_SLOTS:
        return min(settings.WEBHOOK_RUN_SLOTS, concurrency)
    if set(queues) <= {"webhooks"}:
        return concurrency
    return max(1, concurrency - 1)


def worker_started(*, name: str, concurrency: int, queues: Iterable[str]) -> None:
    _worker.name, _worker.slots = name, slots_allowed(concurrency=concurrency, queues=queues)


def lease_seconds() -> float:
    return settings.WEBHOOK_RUN_LEASE_SECONDS


@dataclass
class Slot:
    key: str = ""  # empty: runs are not capped here (no worker, no cache)
    token: str = ""


def slot_take() -> Slot | None:
    """One of this worker's run slots, or None when its runs already hold every one."""
    from django.core.cache import cache

    if not _worker.name or not _worker.slots:
        return Slot()
    token = secrets.token_hex(8)
    try:
        for n in range(_worker.slots):
            key = SLOT_KEY.format(worker=_worker.name, n=n)
            if cache.add(key, token, lease_seconds()):
                return Slot(key, token)
    except Exception:  # noqa: BLE001 - a cache that does not answer caps nothing
        logger.warning("webhook run slots unavailable; this run is not capped", exc_info=True)
        return Slot()
    return None


def slot_renew(slot: Slot) -> None:
    from django.core.cache import cache

    if not slot.key:
        return
    try:
        if not cache.touch(slot.key, lease_seconds()):
            cache.add(slot.key, slot.token, lease_seconds())  # the cache was emptied meanwhile
    except Exception:  # noqa: BLE001
        logger.debug("could not renew webhook run slot %s", slot.key, exc_info=True)


def slot_give_back(slot: Slot) -> None:
    from django.core.cache import cache

    if not slot.key:
        return
    try:
        if cache.get(slot.key) == slot.token:
            cache.delete(slot.key)
    except Exception:  # noqa: BLE001 - it expires with its lease
        logger.debug("could not give back webhook run slot %s", slot.key, exc_info=True)


class Heartbeat:
    """Renews a run's hold on its endpoint and its slot key every third of the lease, from a thread of
    its own, until `stop`. `hold` is the run's current lease (the compare-and-set token)."""

    def __init__(self, *, endpoint_id: int, hold: datetime, slot: Slot) -> None:
        self.endpoint_id, self.hold, self.slot = endpoint_id, hold, slot
        self.lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"webhook-run-{endpoint_id}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(lease_seconds() / 3):
                with self.lock:
                    if self._stopped.is_set():
                        return
                    renewed = timezone.now() + timedelta(seconds=lease_seconds())
                    if Endpoint.objects.filter(pk=self.endpoint_id, run_lease_until=self.hold).update(
                            run_lease_until=renewed):
                        self.hold = renewed
                    slot_renew(self.slot)
        except Exception:  # noqa: BLE001 - the hold lapses and the endpoint is taken over: nothing lost
            logger.exception("webhook run heartbeat for endpoint %s failed", self.endpoint_id)
        finally:
            connection.close()  # this thread's own database connection

    def stop(self) -> datetime:
        """Stop renewing; returns the hold as last renewed. Waits for a renewal in progress, but never
        longer than a lease (a renewal blocked on a row lock must not hold up the run's end)."""
        got = self.lock.acquire(timeout=lease_seconds())
        try:
            self._stopped.set()
            return self.hold
        finally:
            if got:
                self.lock.release()
