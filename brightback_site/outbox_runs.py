"""Runs of a per-row channel (billing, alerts, receipts): a wake-up sends what is due, several rows side by
side, instead of one Celery task per row.

A message names one row, but the worker that takes it runs the channel for a few seconds:
- it claims that row (when it is due and free), then any other due row of the channel, one at a time:
  a claim holds only a row about to be sent, so a slow destination never holds up rows it has not
  started (another slot, or another thread of this run, takes them);
- while rows keep coming it sends up to RUN_THREADS at once, each in a thread of the worker's own
  (with its own database connection, kept between runs), so one Celery slot serves a burst: most of a
  row's time is spent waiting (on the database, the mail server, the provider, a CPU), not computing;
- it stops claiming after RUN_SECONDS and, if rows may still be due, wakes its channel again behind
  the other queues' messages.

Wake-ups are bounded: a row written while a wake-up of its channel waits in the queue publishes nothing
(`wake_gated`: one cache key per channel, cleared when a run starts, so the next row wakes another run
that a free slot can take; kept at most the channel's grace period, so a message the broker lost costs
no longer than that even before the sweeper notices). Without a cache that answers, every row publishes,
as before: the gate saves messages, it is never a condition for delivery. A retry (its own countdown)
and the sweeper's wake-ups are published regardless of the gate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from celery import Task

from . import outbox

logger = logging.getLogger(__name__)

# A run stops claiming after this long (what it started, it finishes) and wakes its channel again.
RUN_SECONDS = 3.0
# Rows a run sends at once: its own thread and RUN_THREADS - 1 helpers.
RUN_THREADS = 4
GATE_KEY = "outbox:wake-queued:{}"

Result = TypeVar("Result")


def wake_gated(task: Task, *, args: list[Any], keep_seconds: float) -> bool:
    """Publish a wake-up of `task`'s channel unless one already waits in the queue; True when one was
    published. Never raises."""
    from django.core.cache import cache

    key = GATE_KEY.format(task.name)
    try:
        if not cache.add(key, 1, keep_seconds):
            return False
    except Exception:  # noqa: BLE001 - no cache: publish, as every row did before the gate
        logger.debug("wake-up gate of %s unavailable", task.name, exc_info=True)
    published = outbox.publish(task, args=args)
    if not published:
        gate_open(task.name)
    return published


def gate_open(task_name: str) -> None:
    """A run of the channel started (or its wake-up was not published): the next row publishes one."""
    from django.core.cache import cache

    try:
        cache.delete(GATE_KEY.format(task_name))
    except Exception:  # noqa: BLE001 - it lapses after the grace period
        logger.debug("could not open the wake-up gate of %s", task_name, exc_info=True)


def forget_wake_gates() -> None:
    """Open every channel's gate (tests start from nothing: another test's message is no wake-up of theirs)."""
    from django.conf import settings
    from django.core.cache import cache

    try:
        cache.delete_many([GATE_KEY.format(name) for name in getattr(settings, "CELERY_TASK_ROUTES", {})])
    except Exception:  # noqa: BLE001 - no cache, no gate
        logger.debug("could not open the wake-up gates", exc_info=True)


_helpers: ThreadPoolExecutor | None = None
_helpers_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # Made in the process that runs tasks (a prefork child), on its first run, never before the fork.
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            _helpers = ThreadPoolExecutor(max(RUN_THREADS - 1, 1), thread_name_prefix="outbox-run")
        return _helpers


@dataclass
class Run(Generic[Result]):
    """What a run did: each row's result (its primary key first), and whether it stopped at its budget."""

    results: list[tuple[Any, Result]] = field(default_factory=list)
    out_of_time: bool = False


def run(*, first: Callable[[], outbox.Claim], claim_next: Callable[[], outbox.Claim],
        handle: Callable[[outbox.Claim], Result], name: str, threads: int | None = None,
        seconds: float | None = None) -> Run[Result]:
    """Send the row `first` claims, then whatever else of the channel is due, for about `seconds`, up to
    `threads` rows at once. `handle` carries out one claimed row and finishes it; one that raises is
    logged and left to its lease (the sweeper wakes it again). Each claim holds one row."""
    threads = RUN_THREADS if threads is None else threads
    result: Run[Result] = Run()
    deadline = time.monotonic() + (RUN_SECONDS if seconds is None else seconds)
    lock = threading.Lock()
    state = {"helpers": 0, "more": threads > 1}

    def one(claim: outbox.Claim) -> None:
        row = claim.rows[0]
        try:
            outcome = handle(claim)
        except Exception:  # noqa: BLE001 - parked, not lost: its lease runs out and the sweeper has it
            logger.exception("%s %s crashed", name, row.pk)
            return
        with lock:
            result.results.append((row.pk, outcome))

    def drain(claim: outbox.Claim, *, helper: bool) -> None:
        while claim.rows:
            if not helper:
                spread()
            one(claim)
            if time.monotonic() >= deadline:
                result.out_of_time = True
                return
            claim = claim_next()

    def spread() -> None:
        # One more row due while a helper is free: a helper takes it and keeps draining beside this thread.
        with lock:
            if not state["more"] or state["helpers"] >= threads - 1:
                return
        extra = claim_next()
        if not extra.rows:
            state["more"] = False
            return
        with lock:
            state["helpers"] += 1
        futures.append(_pool().submit(helper_drain, extra))

    def helper_drain(claim: outbox.Claim) -> None:
        from django.db import close_old_connections

        close_old_connections()  # this thread's connection, kept from an earlier run: drop it if broken
        try:
            drain(claim, helper=True)
        except Exception:  # noqa: BLE001 - a claim failed (the database went away): the sweeper has the rows
            logger.exception("%s: a helper of the run stopped", name)
        finally:
            with lock:
                state["helpers"] -= 1

    futures: list[Any] = []
    claim = first()
    if not claim.rows:
        claim = claim_next()
    try:
        drain(claim, helper=False)
    finally:
        for future in list(futures):
            future.result()
    return result
