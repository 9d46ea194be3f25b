"""The transactional outbox shared by every channel (webhooks, billing, alerts).

A channel's rows (a webhook Delivery, a BillingAction, an AlertDelivery) subclass `OutboxRow` and live
the same life:
1. written in the transaction of the event that caused them, and published `on_commit` (`publish`);
2. claimed by a worker with a compare-and-set under a lease (`claim`); a claim whose lease ran out (its
   worker was killed) is taken over by the next claim;
3. carried out once, then finished by the holder of the claim only (`finish`): succeeded, failed, or
   pending again with its next attempt scheduled on the row (`retry_delay`), never in the broker alone;
4. swept by beat (`sweep`): rows whose message can have been lost are published again, so a message
   the broker lost delays work and never drops it. A row merely waiting in its queue is left alone:
   only a row due longer than a queue wait can explain (its queue is empty, or the workers already
   started messages published after its own) or whose lease ran out is woken again.

Each channel has its own Celery queue (CELERY_TASK_ROUTES), so a backlog in one never delays another;
every message carries the time it becomes runnable (`runnable_at`), and workers note, per queue, the
latest they started (`queue_head`): the sweeper's measure of how far each queue has got.

A publish that fails (the broker is down, or hangs) is logged and dropped: the row is still in the
database and the sweeper re-publishes it. A request must never fail or wait because the broker is
unavailable, so after one failure this process stops trying for OUTBOX_PUBLISH_PAUSE_SECONDS.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from celery import Task
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .statements import insert_sql, inserted_fields

logger = logging.getLogger(__name__)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
JITTER = 0.1  # each retry delay is stretched by up to 10%, so a recovering service is not stampeded
RETRY_AFTER_MAX = 24 * 3600  # a Retry-After is honoured up to a day
# A message may reach the worker a little before its row is due (clocks, ETA rounding).
EARLY_TOLERANCE = timedelta(seconds=1)
# Retry wake-ups wait in the broker as ETA messages only for short delays; longer ones are left to
# the sweeper, so no message sits unacknowledged near the broker's visibility timeout.
COUNTDOWN_MAX_SECONDS = 15 * 60


# --- publishing -----------------------------------------------------------------------------------

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


# The queues this process has published to, declared by that first publish: kombu remembers a declaration
# too, but copies and binds the queue again on every publish to find out, a sixth of a publish's CPU.
_declared: set[str] = set()


def publish(task: Task, *, args: Sequence, countdown: float | None = None) -> bool:
    """Send one message; False (logged) when the broker did not take it. Never raises."""
    if _paused():
        return False
    args = list(args)
    queue = queue_of(task.name)
    # The queue is declared by the first publish only; the arguments' repr for the worker's log is given,
    # not worked out by Celery's saferepr (ids and short JSON values: their repr is already safe).
    options: dict[str, Any] = {"declare": []} if queue in _declared else {}
    try:
        task.apply_async(args=args, countdown=countdown, headers={"runnable_at": time.time() + (countdown or 0)},
                         argsrepr=repr(args), kwargsrepr="{}", **options)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the sweeper has the row
        _pause()
        logger.warning("broker unavailable, %s%s left to the sweeper: %s", task.name, args, exc)
        return False
    _declared.add(queue)
    return True


def publish_retry(task: Task, *, args: Sequence, retry_in: float | None) -> bool:
    """Wake `task` again when a retry it scheduled on its row falls due, if that is soon; later retries
    are left to the sweeper. False when nothing was published."""
    if retry_in is None or retry_in > COUNTDOWN_MAX_SECONDS:
        return False
    return publish(task, args=args, countdown=retry_in)


# --- the queues ------------------------------------------------------------------------------------

HEAD_KEY = "outbox:queue-head:{}"
HEAD_KEPT_SECONDS = 7 * 24 * 3600


def queue_of(task_name: str) -> str:
    """The Celery queue a task's messages go to (CELERY_TASK_ROUTES, else the default queue)."""
    route = getattr(settings, "CELERY_TASK_ROUTES", {}).get(task_name) or {}
    return str(route.get("queue") or getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))


def queue_head_seen(queue: str, runnable_at: float) -> None:
    """A worker started a message that became runnable at `runnable_at` (unix seconds): everything
    published to `queue` before it has been taken from the queue (FIFO). Kept in the cache, shared by
    every worker; a lost update only makes the sweeper quieter for one tick."""
    from django.core.cache import cache

    key = HEAD_KEY.format(queue)
    try:
        current = cache.get(key)
        if current is None or runnable_at > current:
            cache.set(key, runnable_at, HEAD_KEPT_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is an optimisation of the sweeper, never a requirement
        logger.debug("could not note the head of queue %s", queue, exc_info=True)


def queue_head(queue: str) -> datetime | None:
    """The runnable time of the latest message workers started from `queue`, or None when unknown (no
    worker has started one since the cache was emptied, e.g. a Redis restarted empty)."""
    from django.core.cache import cache

    try:
        value = cache.get(HEAD_KEY.format(queue))
    except Exception:  # noqa: BLE001
        return None
    return None if value is None else datetime.fromtimestamp(float(value), tz=UTC)


def forget_queue_heads() -> None:
    """Forget how far every queue has got (tests start from nothing). Never raises."""
    from django.core.cache import cache

    try:
        cache.delete_many([HEAD_KEY.format(q) for q in getattr(settings, "WORKER_QUEUES", [])])
    except Exception:  # noqa: BLE001 - no cache, nothing remembered
        logger.debug("could not forget the queues' heads", exc_info=True)


def queue_size(queue: str) -> int | None:
    """How many messages wait in `queue` (not counting those a worker holds), or None when the broker
    cannot say."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as connection:
            channel = connection.default_channel
            return int(channel._size(queue))  # the virtual transports' (Redis, filesystem) own count
    except Exception:  # noqa: BLE001 - unknown: the sweeper then assumes the message can be lost
        return None


def run_alone(name: str, *, seconds: float, job: Callable[[], int]) -> int:
    """Run `job` unless another copy of it is running (a cache lock that expires after `seconds`, the
    job's hard time limit): two sweeps side by side would publish the same wake-ups twice."""
    from django.core.cache import cache

    key = f"outbox:running:{name}"
    try:
        if not cache.add(key, 1, seconds):
            logger.info("%s already running; this copy does nothing", name)
            return 0
    except Exception:  # noqa: BLE001 - no cache: running twice is wasteful, not wrong
        return job()
    try:
        return job()
    finally:
        try:
            cache.delete(key)
        except Exception:  # noqa: BLE001
            pass


# --- the rows ---------------------------------------------------------------------------------------

class OutboxRow(models.Model):
    """The columns the engine reads and writes. A channel's model subclasses it, may override `status`
    to give it choices, and sets CLAIMED to the status a claimed row has ("sending", "running")."""

    CLAIMED: ClassVar[str] = "sending"

    status = models.CharField(max_length=12, default=PENDING)
    attempt_count = models.PositiveSmallIntegerField(
        default=0, help_text=_("Attempts since the row (or its last manual retry) started."))
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    swept_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = models.Manager()

    class Meta:
        abstract = True


Row = TypeVar("Row", bound=OutboxRow)


def retry_delay(*, schedule: Sequence[float], attempt_number: int, retry_after: float | None = None,
                scale: float = 1.0, rng: random.Random | None = None) -> float | None:
    """Seconds before the attempt after `attempt_number`, or None when the schedule is over.

    `schedule[n - 1]` is the wait after attempt n. A Retry-After longer than the step is honoured (up
    to a day); the result is stretched by up to JITTER and multiplied by `scale`, which tests use to
    compress time.
    """
    if attempt_number < 1 or attempt_number > len(schedule):
        return None
    delay = float(schedule[attempt_number - 1])
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    delay *= 1 + (rng or random).uniform(0, JITTER)
    return delay * scale


def due(model: type[OutboxRow], now: datetime) -> Q:
    """Rows a worker may claim: pending and due, or claimed by a worker whose lease ran out."""
    return (Q(status=PENDING, next_attempt_at__lte=now + EARLY_TOLERANCE)
            | Q(status=model.CLAIMED, lease_expires_at__lt=now))


@dataclass
class Claim(Generic[Row]):
    rows: list[Row]
    lease_until: datetime


def claim(model: type[Row], scope: Q, *, limit: int, lease_seconds: float,
          on_takeover: Callable[[list[int]], None] | None = None, count_attempt: bool = False,
          related: Sequence[str] = (), marks: dict[str, Any] | None = None,
          takeover: Q | None = None) -> Claim[Row]:
    """Compare-and-set: take up to `limit` due rows of `scope` that nobody holds, under a lease that is
    also the claim's token. `count_attempt` adds one to each taken row's attempt_count in the same
    statement (a channel that counts an attempt before it starts); `related` is select_related for the
    rows returned; `marks` are column values the claim writes on each row it takes (a channel's note of
    who claimed it).

    Rows taken over from a lost worker are handed to `on_takeover` (their primary keys) inside the
    claim's transaction, so a channel can close and count the attempt that worker left unfinished even
    if this run gives the row back unsent. A claimed row is lost once its lease runs out; `takeover`
    names claimed rows the caller knows to be lost before that (their holder is gone), which it takes
    as if their lease had run out.

    On PostgreSQL the claim is one statement: an UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) …
    RETURNING the rows, read with what `related` joins as the query of a WITH named as the table (one
    round trip; with `on_takeover`, which needs the transaction, the rows are read again after it only
    when it changed some). Every channel's worker claims once per task or batch: under load the claims
    were a third of a worker's waits on the database, an UPDATE then a SELECT each.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    claimable_now = due(model, now) if takeover is None else due(model, now) | (Q(status=model.CLAIMED) & takeover)
    connection = connections[router.db_for_write(model)]
    if connection.vendor == "postgresql":
        with transaction.atomic(using=connection.alias) if on_takeover is not None else nullcontext():
            returned = _claim_in_one_statement(model, scope & claimable_now, now=now, lease_until=lease_until,
                                               limit=limit, count_attempt=count_attempt, related=related,
                                               marks=marks or {})
            lost = [row.pk for row, was in returned if was == model.CLAIMED]
            if not lost or on_takeover is None:
                return Claim([row for row, _ in returned], lease_until)
            on_takeover(lost)
        taken = [row.pk for row, _ in returned]
    else:
        with transaction.atomic():
            # SKIP LOCKED: workers draining the same queue take disjoint rows instead of waiting.
            claimable = list(model.objects.select_for_update(skip_locked=True).filter(scope & claimable_now)
                             .order_by("next_attempt_at", "pk").values_list("pk", "status")[:limit])
            if claimable:
                changes: dict[str, Any] = {"status": model.CLAIMED, "lease_expires_at": lease_until,
                                           "updated_at": now, **(marks or {})}
                if count_attempt:
                    changes["attempt_count"] = models.F("attempt_count") + 1
                model.objects.filter(pk__in=[pk for pk, _ in claimable]).update(**changes)
                lost = [pk for pk, status in claimable if status == model.CLAIMED]
                if lost and on_takeover is not None:
                    on_takeover(lost)
        taken = [pk for pk, _ in claimable]
    if not taken:
        return Claim([], lease_until)
    rows = list(model.objects.select_related(*related).filter(
        pk__in=taken, status=model.CLAIMED, lease_expires_at=lease_until).order_by("next_attempt_at", "pk"))
    return Claim(rows, lease_until)


_WAS = "bb_claimed_was"  # the CTE's column with each row's status before the claim


def _claim_in_one_statement(model: type[Row], claimable: Q, *, now: datetime, lease_until: datetime, limit: int,
                            count_attempt: bool, related: Sequence[str],
                            marks: dict[str, Any]) -> list[tuple[Row, str]]:
    """claim()'s compare-and-set on PostgreSQL: each row of `claimable` taken (with `related` joined) and
    its status before, in one statement. The UPDATE is a WITH query named as the table, which hides the table from
    the SELECT that follows it: that SELECT is the ORM's own (select_related and all), so the rows come
    back as model instances without a second read."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(str(_concrete(model, model._meta.pk.name if model._meta.pk is not None else "pk").column))
    status = quote(str(_concrete(model, "status").column))
    # SKIP LOCKED: workers draining the same queue take disjoint rows instead of waiting.
    candidates = (model.objects.filter(claimable).order_by("next_attempt_at", "pk")
                  .values_list("pk", "status")[:limit])
    inner, inner_params = candidates.query.sql_with_params()
    sets = [f"{status} = %s", f"{quote(str(_concrete(model, 'lease_expires_at').column))} = %s",
            f"{quote(str(_concrete(model, 'updated_at').column))} = %s"]
    marked = [(_concrete(model, name), value) for name, value in marks.items()]
    sets += [f"{quote(str(f.column))} = %s" for f, _ in marked]
    if count_attempt:
        attempts = quote(str(_concrete(model, "attempt_count").column))
        sets.append(f"{attempts} = {table}.{attempts} + 1")
    update = (f"UPDATE {table} SET {', '.join(sets)} "
              f"FROM ({inner} FOR UPDATE OF {table} SKIP LOCKED) AS claimed (claimed_pk, claimed_was) "
              f"WHERE {table}.{pk} = claimed.claimed_pk RETURNING {table}.*, claimed.claimed_was AS {_WAS}")
    status_field = _concrete(model, "status")
    params = [status_field.get_db_prep_save(model.CLAIMED, connection),
              _concrete(model, "lease_expires_at").get_db_prep_save(lease_until, connection),
              _concrete(model, "updated_at").get_db_prep_save(now, connection),
              *(f.get_db_prep_save(value, connection) for f, value in marked), *inner_params]
    rows = (model.objects.using(connection.alias).select_related(*related)
            .annotate(**{_WAS: RawSQL(f"{table}.{_WAS}", ())}).order_by("next_attempt_at", "pk"))
    query = rows.query
    ormcompiler = connection.ops.compiler(query.compiler)

    class Claiming(ormcompiler):  # type: ignore[valid-type, misc]
        def as_sql(self, *args: Any, **kwargs: Any) -> tuple[str, tuple]:
            sql, sql_params = super().as_sql(*args, **kwargs)
            return f"WITH {table} AS ({update}) {sql}", (*params, *sql_params)

    def get_compiler(using: str | None = None, connection: Any = None, elide_empty: bool = True) -> Any:
        return Claiming(query, connection or connections[using or DEFAULT_DB_ALIAS], using, elide_empty)

    query.get_compiler = get_compiler  # type: ignore[method-assign]
    return [(row, row.__dict__.pop(_WAS)) for row in rows]


def release(claim: Claim, rows: Sequence[OutboxRow]) -> None:
    """Give back claimed rows that were not attempted; they stay due."""
    if not rows:
        return
    model = type(rows[0])
    model.objects.filter(pk__in=[row.pk for row in rows], status=model.CLAIMED,
                         lease_expires_at=claim.lease_until).update(status=PENDING, lease_expires_at=None)


def finish(row: OutboxRow, *, lease_until: datetime, status: str, retry_in: float | None = None,
           now: datetime | None = None, **fields: Any) -> bool:
    """End one attempt of a claimed row: `status` (succeeded, failed, or a channel's own final status
    such as skipped), or pending again `retry_in` seconds from now when that is given. Extra `fields`
    (last_error, attempt_count, the channel's own columns) are written in the same UPDATE.

    Only the holder of the claim may finish it: a worker that lost its lease records nothing and gets
    False.
    """
    now = now or timezone.now()
    values: dict[str, Any] = {"lease_expires_at": None, "swept_at": None, "updated_at": now, **fields}
    if retry_in is not None:
        values.update(status=PENDING, next_attempt_at=now + timedelta(seconds=retry_in))
    else:
        values["status"] = status
    model = type(row)
    done = model.objects.filter(pk=row.pk, status=model.CLAIMED, lease_expires_at=lease_until).update(**values) == 1
    if done:
        for name, value in values.items():
            setattr(row, name, value)
    return done


INSERT_BATCH = 500  # rows per INSERT: far below PostgreSQL's 65,535 parameters for any channel's row


def insert(rows: Sequence[Row]) -> list[Any]:
    """Write a channel's new rows (all of one model, keys given by the database) in one INSERT … RETURNING
    and return their keys, as QuerySet.bulk_create does but for the SQL built once per model and row count:
    a decision's receipt or delivery rows cost their INSERT, not the ORM's compiling of it. Elsewhere than
    PostgreSQL, bulk_create itself."""
    if not rows:
        return []
    model = type(rows[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return [row.pk for row in model.objects.bulk_create(rows)]
    fields = inserted_fields(model)
    keys: list[Any] = []
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start:start + INSERT_BATCH]
        params: list[Any] = []
        for row in batch:
            row._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
            params += [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(insert_sql(model, len(batch), connection.ops.quote_name), params)
            written = [key for (key,) in cursor.fetchall()]
        for row, key in zip(batch, written, strict=True):
            row.pk = key
            row._state.adding, row._state.db = False, connection.alias
        keys += written
    return keys


def _concrete(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{model._meta.label}.{name} is not a column")
    return field


def update_each(rows: Sequence[models.Model], *, fields: Sequence[str], where: dict[str, Any] | None = None) -> int:
    """Write each row's own values of `fields`, guarded by `where` (column: value, the same for all), as
    one parametrised UPDATE executed for every row in one call (psycopg pipelines it: one round trip).
    Far cheaper than QuerySet.bulk_update's CASE per field and row. Returns how many rows changed."""
    if not rows:
        return 0
    model = type(rows[0])
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    pk = _concrete(model, model._meta.pk.name if model._meta.pk is not None else "pk")
    targets = [_concrete(model, name) for name in fields]
    guards = [(_concrete(model, name), value) for name, value in (where or {}).items()]
    sql = (f"UPDATE {quote(model._meta.db_table)} SET {', '.join(f'{quote(str(f.column))} = %s' for f in targets)} "
           f"WHERE {quote(str(pk.column))} = %s"
           + "".join(f" AND {quote(str(f.column))} IS NULL" if value is None else f" AND {quote(str(f.column))} = %s"
                     for f, value in guards))
    guard_params = [f.get_db_prep_value(value, connection) for f, value in guards if value is not None]
    params = [[*(f.get_db_prep_save(getattr(row, f.attname), connection) for f in targets),
               pk.get_db_prep_value(row.pk, connection), *guard_params] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return max(cursor.rowcount, 0)


def finish_many(rows: Sequence[OutboxRow], *, lease_until: datetime, status: str, fields: Sequence[str] = (),
                now: datetime | None = None) -> int:
    """finish() for many claimed rows ending the same way, in one call: each row's own values of `fields`
    (set on it by the caller) are written with `status`. As with finish(), only rows still held under
    `lease_until` change; returns how many did."""
    if not rows:
        return 0
    now = now or timezone.now()
    for row in rows:
        row.status, row.lease_expires_at, row.swept_at, row.updated_at = status, None, None, now
    model = type(rows[0])
    return update_each(rows, fields=["status", "lease_expires_at", "swept_at", "updated_at", *fields],
                       where={"status": model.CLAIMED, "lease_expires_at": lease_until})


def lost(model: type[OutboxRow], *, queue: str, grace_seconds: float, now: datetime) -> Q:
    """Rows whose message can have been lost: claimed by a worker whose lease ran out, or pending more
    than `grace_seconds` past their due time while nothing can explain the wait. A row's message was
    published when it fell due (on commit, as a retry's ETA) or when it was last swept; it is still on
    its way while workers have not yet reached that point of `queue`. So a pending row is woken again
    only when the queue is empty, when the workers started a message published `grace_seconds` or more
    after the row fell due (or after it was last swept), when
    the queue's progress is unknown (a Redis restarted empty), or after OUTBOX_LOST_AFTER_SECONDS
    whatever the queue says."""
    grace = timedelta(seconds=grace_seconds)
    not_recently_swept = Q(swept_at__isnull=True) | Q(swept_at__lte=now - grace)
    overdue = Q(status=PENDING, next_attempt_at__lte=now - grace)
    head = queue_head(queue)
    waiting = queue_size(queue) if head is not None else None
    if head is not None and waiting:  # an empty queue, or one the broker cannot count, explains nothing
        # A row's message goes out a moment after its due time is written: when the request that wrote
        # it commits (a second or more under load), or as its retry's ETA. Workers starting a message
        # that became runnable in between say nothing of the row's own, which may be just behind it in
        # the queue; only a head past the row by the grace period does (the soak saw three alerts in ten
        # published twice without that margin, each a wasted task in a backlog).
        published_before_head = (Q(next_attempt_at__lt=head - grace)
                                 & (Q(swept_at__isnull=True) | Q(swept_at__lt=head)))
        too_long = Q(next_attempt_at__lte=now - timedelta(seconds=settings.OUTBOX_LOST_AFTER_SECONDS))
        overdue &= published_before_head | too_long
    lapsed = Q(status=model.CLAIMED, lease_expires_at__lt=now)
    return (overdue | lapsed) & not_recently_swept


def sweep(model: type[OutboxRow], *, grace_seconds: float, wake: Callable[[list[Any]], int], queue: str,
          group_by: str = "pk", scope: Q | None = None, now: datetime | None = None, limit: int = 1000) -> int:
    """Publish again what the broker can have lost (see `lost`). `wake` receives the distinct
    `group_by` values (row ids, or e.g. the endpoints that drain them) and returns how many messages it
    published. Each row triggers at most one wake-up per grace period, so a long queue is not flooded."""
    now = now or timezone.now()
    stale = lost(model, queue=queue, grace_seconds=grace_seconds, now=now)
    if scope is not None:
        stale &= scope
    rows = list(model.objects.filter(stale).order_by("next_attempt_at").values_list("pk", group_by)[:limit])
    if not rows:
        return 0
    model.objects.filter(pk__in=[pk for pk, _ in rows]).update(swept_at=now)
    groups = sorted({group for _, group in rows})
    woken = wake(groups)
    logger.info("%s sweep: %d stale rows in %d groups, %d woken", model._meta.label, len(rows), len(groups), woken)
    return woken


def start_over(rows: models.QuerySet, *, now: datetime, **fields: Any) -> int:
    """Put rows back at the start of their retry schedule (a person pressed Resend, Retry or Redeliver):
    due now, no attempt counted, no lease, not swept. `fields` are the channel's own resets; the caller's
    filter says which rows may start over (never one a worker holds). Returns how many did."""
    return rows.update(status=PENDING, attempt_count=0, next_attempt_at=now, swept_at=None, lease_expires_at=None,
                       updated_at=now, **fields)


@dataclass
class Channel:
    """What a per-row channel (billing, alerts) hands the engine: its model, its task and its timing."""

    model: type[OutboxRow]
    task: Task
    lease_seconds: Callable[[], float]
    grace_seconds: Callable[[], float] = field(default=lambda: settings.OUTBOX_PUBLISH_GRACE_SECONDS)
    on_takeover: Callable[[list[int]], None] | None = None  # see claim()

    def wake(self, pks: Sequence[int]) -> int:
        """The sweeper's wake-ups, whatever the gate: one message for every few rows (each wakes a run
        that sends any due row of the channel, several at once)."""
        from .outbox_runs import RUN_THREADS

        return sum(1 for pk in list(pks)[::RUN_THREADS] if publish(self.task, args=[pk]))

    def wake_on_commit(self, pks: Sequence[int]) -> None:
        """Wake the channel when the caller's transaction commits, unless a wake-up already waits in its
        queue (outbox_runs.wake_gated): the run it starts sends these rows too."""
        from .outbox_runs import wake_gated

        ids = list(pks)
        if ids:
            transaction.on_commit(lambda: wake_gated(self.task, args=[ids[0]], keep_seconds=self.grace_seconds()))

    def claim_one(self, pk: int | None, *, count_attempt: bool = False, related: Sequence[str] = ()) -> Claim:
        """Claim row `pk` if it is due and free, or (None) the channel's next due row."""
        return claim(self.model, Q() if pk is None else Q(pk=pk), limit=1, lease_seconds=self.lease_seconds(),
                     on_takeover=self.on_takeover, count_attempt=count_attempt, related=related)

    def run(self, pk: int, *, handle: Callable[[Claim], Any], eager: bool = False, count_attempt: bool = False,
            related: Sequence[str] = ()) -> Any:
        """A run of the channel (outbox_runs.run) started by the wake-up naming row `pk`; `eager` (a task
        run in its caller's process and transaction: tests) sends from this thread only. Retries due
        soon are woken by their own message; a run that ran out of time wakes its channel again."""
        from . import outbox_runs

        outbox_runs.gate_open(self.task.name)
        done = outbox_runs.run(
            first=lambda: self.claim_one(pk, count_attempt=count_attempt, related=related),
            claim_next=lambda: self.claim_one(None, count_attempt=count_attempt, related=related),
            handle=handle, name=self.task.name, threads=1 if eager else None)
        # One wake-up for the retries falling due within the same second (a run that found the provider
        # busy, receipts waiting for billing): its run sends them all.
        retries: dict[int, tuple[float, int]] = {}
        for row_pk, outcome in done.results:
            retry_in = getattr(outcome, "retry_in", None)
            if retry_in is not None:
                second = math.ceil(retry_in)
                retries[second] = max(retries.get(second, (retry_in, row_pk)), (retry_in, row_pk))
        for retry_in, row_pk in retries.values():
            publish_retry(self.task, args=[row_pk], retry_in=retry_in)
        if done.out_of_time:
            outbox_runs.wake_gated(self.task, args=[pk], keep_seconds=self.grace_seconds())
        return done

    def sweep(self, *, now: datetime | None = None) -> int:
        return sweep(self.model, grace_seconds=self.grace_seconds(), wake=self.wake, queue=queue_of(self.task.name),
                     now=now)
