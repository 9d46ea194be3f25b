"""Every write of the webhooks channel's outbox: the rows (Delivery) and their attempts (endpoints
themselves: endpoints.py; what is sent: payloads.py).

A delivery's life: `deliveries_create_for_event` writes it in the event's transaction and wakes its
endpoint on commit; a worker runs `endpoint_deliver_due`, which claims the endpoint's due deliveries
with a compare-and-set, records each attempt before and after its POST, and either finishes each
delivery or schedules its next attempt; beat runs `deliveries_sweep`, which wakes endpoints whose
wake-up the broker lost.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import router, transaction
from django.db.models import F, Q
from django.utils import timezone

from brightback_site import outbox
from flows import ids, recording
from flows.models import App, Event
from flows.selectors import app_part

from . import runs, signing, transport, wake_gate
from .attempts import ATTEMPT_FIELDS, Successes, attempt_open
from .endpoints import endpoint_disable
from .models import Delivery, DeliveryAttempt, Endpoint
from .payloads import body_bytes, test_event_data, utc_iso, webhook_body

logger = logging.getLogger(__name__)

# Seconds to wait after attempt 1, 2, 3…: the Standard Webhooks schedule (immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h), continued with 10-hour steps so retries span about three days.
RETRY_DELAYS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RETRY_AFTER_STATUSES = frozenset({429, 503})
TEST_EVENT_TYPE = "webhook.test"


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "skipped" (not ours to send), or a DeliveryAttempt.Outcome value
    retry_in: float | None = None  # seconds until the next attempt is due
    # The receiver is in trouble (no answer, 5xx, 429), not just refusing this one message.
    endpoint_trouble: bool = False
    no_answer: bool = False  # a timeout or a failed connection: the receiver said nothing at all


# --- the retry schedule ---------------------------------------------------------------------------

def retry_delay(*, attempt_number: int, retry_after: float | None = None,
                rng: random.Random | None = None) -> float | None:
    """Seconds before the attempt after `attempt_number` on the webhooks' schedule, or None when it is
    over; multiplied by WEBHOOK_RETRY_SCALE, which tests use to compress time."""
    return outbox.retry_delay(schedule=RETRY_DELAYS, attempt_number=attempt_number, retry_after=retry_after,
                              scale=settings.WEBHOOK_RETRY_SCALE, rng=rng)


# --- the outbox: rows written with the event ----------------------------------------------------

def _active_endpoints(*, app: App) -> list[Endpoint]:
    """The App's active endpoints, from this process's memory while the App's version stands: every save
    and delete of an endpoint retires it (see apps.py), and so do endpoint_disable and endpoint_enable."""
    return app_part(app_id=app.app_id, part="webhooks.endpoints",
                    load=lambda: list(Endpoint.objects.filter(app_id=app.pk, is_active=True)
                                      .only("id", "app_id", "event_types")))


def deliveries_create_for_event(*, event: Event) -> list[int]:
    """One Delivery per active endpoint of the event's App that wants its type, in the caller's
    transaction; the endpoints are woken when (and only if) it commits."""
    return deliveries_create_for_events(events=[event])


def deliveries_create_for_events(*, events: Sequence[Event]) -> list[int]:
    """deliveries_create_for_event for many events of one transaction (flows' event_record_many): each
    App's endpoints as kept in memory, every Delivery in one INSERT, each endpoint woken once on commit."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("deliveries must be written in the transaction of their event")
    rows = [row for event in events for row in _deliveries_for(event)]
    if not rows:
        return []
    keys = outbox.insert(rows)
    transaction.on_commit(partial(endpoints_wake, sorted({row.endpoint_id for row in rows})))
    return keys


def _deliveries_for(event: Event) -> list[Delivery]:
    """The event's deliveries (unsaved): one per active endpoint of its App that wants its type."""
    wanting = [e for e in _active_endpoints(app=event.app) if e.wants(event.type)]
    if not wanting:
        return []
    payload = webhook_body(event_type=event.type, created_at=event.created_at, data=event.data)
    return [Delivery(endpoint=endpoint, event=event, message_id=event.id, event_type=event.type, payload=payload,
                     next_attempt_at=event.created_at, created_at=event.created_at) for endpoint in wanting]


def deliveries_with_decision(*, event: Event, alias: str) -> recording.Rows | object | None:
    """The deliveries of a decision's event (unsaved), for the decision's own statement to write
    (flows/recording.py), their endpoints woken when it commits; None when no endpoint wants the event.
    Deliveries kept in another database than the decision's: LATER (on_event writes them)."""
    if alias != router.db_for_write(Delivery):
        return recording.LATER
    rows = _deliveries_for(event)
    if not rows:
        return None
    woken = sorted({row.endpoint_id for row in rows})
    return recording.rows_of(rows, session=None,
                             written=lambda keys: transaction.on_commit(partial(endpoints_wake, woken)))


def endpoints_wake(endpoint_ids: list[int], *, force: bool = False, countdown: float | None = None) -> int:
    """Ask a worker to deliver what is due to each endpoint (after `countdown` seconds when given);
    return how many messages the broker took.

    One queued wake-up per endpoint is enough however many rows are waiting (the run takes them all),
    so a wake-up is only published when the endpoint has none queued (Endpoint.wake_requested, cleared
    by the run that looks). Every wake-up goes through this gate: new events, a run's own next look
    (a retry, a backoff, a batch left over), redeliveries. `force` publishes anyway: the sweeper's way
    past a wake-up the broker lost.
    """
    from .tasks import webhook_deliver  # tasks import this module

    # Endpoints with a wake-up queued already are left alone: it will see the new rows.
    opened = list(endpoint_ids) if force else wake_gate.open_many(endpoint_ids)
    woken = 0
    for endpoint_id in opened:
        if outbox.publish(webhook_deliver, args=[endpoint_id], countdown=countdown):
            woken += 1
        elif not force:
            Endpoint.objects.filter(pk=endpoint_id).update(wake_requested=False)  # the next event retries
    return woken


def deliveries_sweep(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Wake the endpoints of deliveries whose wake-up can have been lost (outbox.lost, grouped by
    endpoint), and of deliveries a killed run left claimed on an endpoint nobody holds now (the next run
    takes them over at once, see _claim: no need to wait for their lease); an endpoint backing off is
    left to the wake-up its backoff scheduled. First, a run slot free while endpoints wait in line for
    one (a killed run's, lapsed, when no wake-up asked for a slot since) goes to the first in line.
    Returns how many wake-ups were published."""
    from .tasks import webhook_deliver  # tasks import this module

    handed = sum(outbox.publish(webhook_deliver, args=[pk]) for pk in runs.waiters_hand_free_slots())
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_PUBLISH_GRACE_SECONDS)
    not_backing_off = Q(endpoint__backoff_until__isnull=True) | Q(endpoint__backoff_until__lte=now - grace)
    not_held = Q(endpoint__run_lease_until__isnull=True) | Q(endpoint__run_lease_until__lt=now)
    orphaned = (Q(status=Delivery.Status.SENDING, claimed_in_run=True, lease_expires_at__gte=now) & not_held
                & (Q(swept_at__isnull=True) | Q(swept_at__lte=now - grace)))
    left = list(Delivery.objects.filter(orphaned & not_backing_off).values_list("pk", "endpoint_id")[:limit])
    if left:
        Delivery.objects.filter(pk__in=[pk for pk, _ in left]).update(swept_at=now)
        handed += endpoints_wake(sorted({endpoint for _, endpoint in left}), force=True)
    return handed + outbox.sweep(Delivery, grace_seconds=settings.WEBHOOK_PUBLISH_GRACE_SECONDS,
                                 wake=partial(endpoints_wake, force=True),
                                 queue=outbox.queue_of(webhook_deliver.name), group_by="endpoint_id",
                                 scope=not_backing_off, now=now, limit=limit)


# --- claiming and sending -----------------------------------------------------------------------

# A run takes up to this many due deliveries of an endpoint at once, and stops taking more after
# DRAIN_BUDGET_SECONDS (what it claimed but did not send goes back, and its next look is queued behind
# the other queues' messages): a busy endpoint takes turns, it never keeps a slot while it drains.
DRAIN_BATCH = 50
DRAIN_BUDGET_SECONDS = 3.0
# A run stops, and the endpoint backs off, at the first attempt without an answer (a timeout, a refused
# connection) or after this many 5xx/429 answers in a row; a single 5xx only delays its own delivery.
TROUBLE_IN_A_ROW = 3
# A run's next look is queued ahead of time only for a retry due this soon: a later one would hold the
# wake-up gate, and new events wait behind it. Later retries are picked up by the next event's run or
# by the sweeper.
WAKE_AHEAD_SECONDS = 10.0


def _close_lost_attempts(delivery_ids: list[int]) -> None:
    """A claim took these over from a lost worker: close and count the attempt it left unfinished."""
    for pk in delivery_ids:
        lost = DeliveryAttempt.objects.filter(delivery_id=pk, outcome=DeliveryAttempt.Outcome.IN_PROGRESS).update(
            outcome=DeliveryAttempt.Outcome.INTERRUPTED, error="the worker was lost during this attempt")
        if lost:
            Delivery.objects.filter(pk=pk).update(attempt_count=F("attempt_count") + lost)


def _claim(scope: Q, *, limit: int, run_since: datetime | None = None) -> outbox.Claim[Delivery]:
    """Claim due deliveries of `scope` under WEBHOOK_LEASE_SECONDS. `run_since`: for a run that took their
    endpoint at that moment, which also takes over the endpoint's deliveries that earlier runs claimed
    and left sending, without waiting for their lease.

    Why that is safe: a run claims only while it holds its endpoint (Endpoint.run_lease_until, one run
    per endpoint at a time) and settles every row of a claim (sent and finished, or given back) before
    it lets the endpoint go. So a row still sending under a claim of a run before this one (claimed
    before `run_since`, hence its lease ends before `run_since` + the lease) is no longer anyone's:
    that run was killed (its hold lapsed) or crashed. Rows a single send claimed (delivery_attempt,
    outside any run) are marked otherwise (Delivery.claimed_in_run) and keep their lease. The one way to
    be wrong is a run alive whose hold lapsed anyway (its heartbeat could not renew it for a whole
    WEBHOOK_RUN_LEASE_SECONDS): it stops before its next delivery once its heartbeat finds the hold
    taken (Heartbeat.lost, within a third of the lease), and what it sends meanwhile may go twice, under
    the same webhook-id, as after a killed worker. Either way the unfinished attempt left behind is
    closed and counted (_close_lost_attempts)."""
    lease = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    earlier_runs = None if run_since is None else Q(claimed_in_run=True, lease_expires_at__lt=run_since + lease)
    return outbox.claim(Delivery, scope, limit=limit, lease_seconds=lease.total_seconds(),
                        on_takeover=_close_lost_attempts, marks={"claimed_in_run": run_since is not None},
                        takeover=earlier_runs)


def _release(claim: outbox.Claim, deliveries: Sequence[Delivery]) -> None:
    outbox.release(claim, deliveries)


@dataclass
class DrainResult:
    sent: int = 0
    retry_in: float | None = None  # seconds until the soonest retry this run scheduled
    backoff: float | None = None  # seconds the endpoint backs off, when the run ended in trouble


def _backoff_seconds(troubled_runs: int, rng: random.Random | None = None) -> float:
    step = settings.WEBHOOK_BACKOFF_SECONDS * 2 ** min(max(troubled_runs - 1, 0), 20)
    return (min(step, settings.WEBHOOK_BACKOFF_MAX_SECONDS) * (1 + (rng or random).uniform(0, outbox.JITTER))
            * settings.WEBHOOK_RETRY_SCALE)


def endpoint_deliver_due(*, endpoint_id: int, budget_seconds: float = DRAIN_BUDGET_SECONDS,
                         batch_size: int = DRAIN_BATCH) -> DrainResult:
    """Send every delivery due to one endpoint, a batch at a time, over one kept-alive connection, for
    at most `budget_seconds` (then the endpoint is handed back through the wake-up gate).

    How a slow or dead receiver is kept from taking the workers (one Celery slot per POST):
    - short runs: a run stops claiming after DRAIN_BUDGET_SECONDS (a few seconds) and queues its
      endpoint's next look behind whatever the other queues hold, so a busy endpoint takes turns with
      billing, alerts and the other endpoints instead of keeping a slot while it drains (after
      runs.TURN_SECONDS when other endpoints wait in line for a slot: runs.Turn);
    - run slots (runs.py): webhook runs take at most all but one of a shared worker's slots, so one
      slot always serves the other queues, however many receivers hang; a wake-up that finds them all
      taken puts its endpoint in line and frees its Celery slot at once, and the run that ends next
      goes on with the endpoint first in line under its slot (no message, no polling). A killed run's
      slot lapses with its lease and goes to the endpoint first in line at the next slot asked for
      (its wake-up published), or at the sweeper's next tick;
    - one run per endpoint at a time (Endpoint.run_lease_until, a compare-and-set under a short lease
      that the run's heartbeat renews): a receiver that hangs holds one slot at most. A wake-up that
      finds the endpoint busy returns at once and checks again when the hold would lapse, so a killed
      worker's endpoint is taken over within WEBHOOK_RUN_LEASE_SECONDS (a live run answers it first:
      it looks again before it ends), and with it the deliveries the killed run had claimed, at once
      rather than when their WEBHOOK_LEASE_SECONDS lease runs out (see _claim);
    - each POST is bounded (WEBHOOK_CONNECT_TIMEOUT_SECONDS to connect, WEBHOOK_TIMEOUT_SECONDS for the
      answer);
    - a receiver in trouble backs off as a whole: at the first attempt without an answer, or after
      TROUBLE_IN_A_ROW 5xx/429 answers in a row, the run gives back what it claimed untouched and
      nothing is sent to the endpoint until Endpoint.backoff_until (doubling with each troubled run in
      a row, reset by a success), so a dead receiver costs one timeout per backoff, not one per
      delivery. New events meanwhile publish nothing: the backoff's own wake-up is queued.
    - one queued wake-up per endpoint: every next look (a retry, the backoff's end, a batch left over)
      goes through the gate of `endpoints_wake`, and a full batch is not a reason for another run.

    Safe to run any number of times and side by side: each delivery is claimed with a compare-and-set
    and sent by one worker only.
    """
    from .tasks import webhook_deliver  # tasks import this module

    started = time.monotonic()
    slot = runs.slot_take(endpoint_id=endpoint_id, hand_on=_wake_handed)
    if slot is None:
        # Every run slot is taken (receivers that hang): free this Celery slot for the other queues. The
        # wake-up flag stays set: the endpoint's place in line for a slot stands for this message, and
        # the run that frees a slot goes on with it. Without a line (one worker's own slots), ask again
        # shortly.
        if not runs.lines_up():
            outbox.publish(webhook_deliver, args=[endpoint_id], countdown=runs.NO_SLOT_RETRY_SECONDS)
        return DrainResult()
    first: DrainResult | None = None
    held: runs.Slot | None = slot
    try:
        next_id: int | None = endpoint_id
        while next_id is not None:
            result = _run(next_id, slot=slot, budget_seconds=budget_seconds, batch_size=batch_size)
            first = first or result
            # The slot goes to the endpoint first in line: this task runs it next while a whole run still
            # fits in its time limit (tasks.SOFT_TIME_LIMIT is two runs), else its wake-up is published.
            if time.monotonic() - started > run_seconds_at_most():
                break
            next_id = runs.slot_pass_on(slot)
            if next_id is None:
                held = None  # freed: nobody waits
    finally:
        if held is not None:
            _slot_give_back(held)
    return first or DrainResult()


def run_seconds_at_most() -> float:
    """How long one run of an endpoint may last: its budget, then the attempt in flight's own timeouts."""
    return (DRAIN_BUDGET_SECONDS + settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS + settings.WEBHOOK_TIMEOUT_SECONDS
            + 10)


def _slot_give_back(slot: runs.Slot) -> None:
    """Free the slot, or reserve it for the endpoint first in line and publish that endpoint's wake-up."""
    handed = runs.slot_give_back(slot)
    if handed is not None:
        _wake_handed(handed)


def _wake_handed(endpoint_id: int) -> None:
    """A run slot was reserved for this endpoint, first in line: publish its wake-up, past the gate (its
    place in line stood for its queued wake-up, so its flag is still set). Lost with the broker, the
    reservation lapses with its lease and the sweeper wakes the endpoint."""
    from .tasks import webhook_deliver  # tasks import this module

    outbox.publish(webhook_deliver, args=[endpoint_id], countdown=None)


def _run(endpoint_id: int, *, slot: runs.Slot, budget_seconds: float, batch_size: int) -> DrainResult:
    """One run of one endpoint under `slot`: take the endpoint (one run each at a time), drain it, hand
    it back through the wake-up gate."""
    result = DrainResult()
    now = timezone.now()
    free = Q(run_lease_until__isnull=True) | Q(run_lease_until__lt=now)
    not_backing_off = Q(backoff_until__isnull=True) | Q(backoff_until__lte=now + outbox.EARLY_TOLERANCE)
    run_lease = now + timedelta(seconds=runs.lease_seconds())
    if not Endpoint.objects.filter(free & not_backing_off, pk=endpoint_id).update(run_lease_until=run_lease):
        _check_on_holder(endpoint_id, now=now)
        return result
    Endpoint.objects.filter(pk=endpoint_id, wake_requested=True).update(wake_requested=False)
    heartbeat = runs.Heartbeat(endpoint_id=endpoint_id, hold=run_lease, slot=slot, since=now).start()
    try:
        endpoint = Endpoint.objects.select_related("app").filter(pk=endpoint_id).first()
        if endpoint is not None:
            _drain(endpoint, result=result, budget_seconds=budget_seconds, batch_size=batch_size,
                   heartbeat=heartbeat)
    finally:
        hold = heartbeat.stop()
        Endpoint.objects.filter(pk=endpoint_id, run_lease_until=hold).update(run_lease_until=None)
        _look_again(endpoint_id, result=result)
    return result


def _check_on_holder(endpoint_id: int, *, now: datetime) -> None:
    """The endpoint is busy, backing off, or gone. Busy: its run looks again before it ends, but a
    killed worker's run never will, so check again just after its hold would lapse (a live run keeps
    renewing it; the check then finds it busy and waits again). Backing off: the backoff's own wake-up
    is queued."""
    from .tasks import webhook_deliver  # tasks import this module

    hold = (Endpoint.objects.filter(pk=endpoint_id, run_lease_until__gte=now)
            .values_list("run_lease_until", flat=True).first())
    if hold is not None:
        countdown = (hold - now).total_seconds() + outbox.EARLY_TOLERANCE.total_seconds()
        # One check queued per endpoint: every wake-up that finds a busy endpoint would otherwise start a
        # chain of checks of its own, each finding it busy again (the soak counted 1,300 empty runs for
        # one flaky endpoint in two minutes).
        if _first_check(endpoint_id, seconds=countdown):
            outbox.publish(webhook_deliver, args=[endpoint_id], countdown=countdown)


CHECK_KEY = "webhooks:holder-check:{}"


def _first_check(endpoint_id: int, *, seconds: float) -> bool:
    """True unless a check on this endpoint's holder is already queued (kept in the cache until it is
    due); without a cache that answers, every check is published."""
    from django.core.cache import cache

    try:
        # Gone by the time the check runs (whole seconds, rounded down), so a check that finds the endpoint
        # busy again can queue the next one.
        return bool(cache.add(CHECK_KEY.format(endpoint_id), 1, max(1, math.floor(seconds))))
    except Exception:  # noqa: BLE001 - an optimisation only
        return True


def _drain(endpoint: Endpoint, *, result: DrainResult, budget_seconds: float, batch_size: int,
           heartbeat: runs.Heartbeat) -> None:
    """The body of a run (its hold on the endpoint is renewed by its heartbeat meanwhile; a run that lost
    it stops)."""
    deadline = time.monotonic() + budget_seconds
    in_a_row = 0
    turn = runs.Turn()  # ends the run early when other endpoints wait in line for a slot
    while time.monotonic() < deadline and not heartbeat.lost and not turn.ended:
        claim = _claim(Q(endpoint_id=endpoint.pk), limit=batch_size, run_since=heartbeat.since)
        if not claim.rows:
            break
        successes = Successes(claim.lease_until)
        try:
            for index, delivery in enumerate(claim.rows):
                if time.monotonic() >= deadline or heartbeat.lost or (result.sent and turn.over()):
                    _release(claim, claim.rows[index:])
                    break
                attempt = _send(delivery, endpoint=endpoint, lease_until=claim.lease_until, successes=successes)
                result.sent += 1
                if attempt.retry_in is not None:
                    result.retry_in = min(attempt.retry_in, result.retry_in or attempt.retry_in)
                if delivery.is_test:
                    continue
                if attempt.outcome == DeliveryAttempt.Outcome.SUCCEEDED:
                    in_a_row = 0
                    if endpoint.troubled_runs:
                        Endpoint.objects.filter(pk=endpoint.pk).update(troubled_runs=0)
                        endpoint.troubled_runs = 0
                elif attempt.endpoint_trouble:
                    in_a_row += 1
                    if attempt.no_answer or in_a_row >= TROUBLE_IN_A_ROW:
                        _release(claim, claim.rows[index + 1:])
                        result.backoff = _endpoint_back_off(endpoint)
                        return
                if successes.due():
                    successes.record()
        finally:
            successes.record()


def _endpoint_back_off(endpoint: Endpoint) -> float:
    """Nothing more to this endpoint for a while; returns the backoff in seconds."""
    troubled = endpoint.troubled_runs + 1
    seconds = _backoff_seconds(troubled)
    Endpoint.objects.filter(pk=endpoint.pk).update(troubled_runs=troubled,
                                                   backoff_until=timezone.now() + timedelta(seconds=seconds))
    endpoint.troubled_runs = troubled
    logger.info("webhook endpoint %s in trouble (%d runs in a row): backing off %.1f s", endpoint.pk, troubled,
                seconds, extra={"endpoint_id": endpoint.pk})
    return seconds


def _look_again(endpoint_id: int, *, result: DrainResult) -> None:
    """Queue the endpoint's next look, through the wake-up gate, when one is needed: at the end of its
    backoff, now if deliveries are due (a batch left over, rows written during the run), or when the
    soonest retry falls due if that is soon. A wake-up that arrived while this run held the endpoint
    left the flag set and did nothing: this run answers it."""
    Endpoint.objects.filter(pk=endpoint_id, wake_requested=True).update(wake_requested=False)
    if result.backoff is not None:
        endpoints_wake([endpoint_id], countdown=result.backoff)
        return
    now = timezone.now()
    soonest = (Delivery.objects.filter(outbox.due(Delivery, now + timedelta(seconds=WAKE_AHEAD_SECONDS)),
                                       endpoint_id=endpoint_id)
               .order_by("next_attempt_at").values_list("status", "next_attempt_at").first())
    if soonest is None:
        return
    status, due_at = soonest
    wait = (due_at - now).total_seconds() if status == Delivery.Status.PENDING else 0.0
    endpoints_wake([endpoint_id], countdown=wait if wait > outbox.EARLY_TOLERANCE.total_seconds() else None)


def delivery_attempt(*, delivery_id: int) -> AttemptResult:
    """Send one delivery now if it is due and nobody holds it (the unit endpoint_deliver_due repeats).
    Running it twice sends once: the claim is a compare-and-set, and a finished delivery is never sent
    again until redelivered."""
    claim = _claim(Q(pk=delivery_id), limit=1)
    if not claim.rows:
        return AttemptResult("skipped")
    delivery = claim.rows[0]
    endpoint = Endpoint.objects.select_related("app").get(pk=delivery.endpoint_id)
    return _send(delivery, endpoint=endpoint, lease_until=claim.lease_until)


def _send(delivery: Delivery, *, endpoint: Endpoint, lease_until: datetime,
          successes: Successes | None = None) -> AttemptResult:
    """One attempt of a claimed delivery: the attempt row is written before the POST and completed after
    (a success with the others of `successes`, when given, by its `record`)."""
    now = timezone.now()
    delivery.endpoint = endpoint
    finish = partial(_finish, delivery=delivery, lease_until=lease_until)
    if not endpoint.is_active and not delivery.is_test:
        return finish(outcome=DeliveryAttempt.Outcome.FAILED, now=now, error="endpoint disabled")
    number = delivery.attempt_count + 1
    if number > MAX_ATTEMPTS:
        return finish(outcome=DeliveryAttempt.Outcome.FAILED, now=now,
                      error="gave up: workers were lost during the last attempts")

    body = body_bytes(delivery.payload)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            secrets=endpoint.signing_secrets(now=now), msg_id=delivery.message_id, timestamp=timestamp, body=body),
    }
    if endpoint.send_hub_signature:
        headers["X-Hub-Signature"] = signing.hub_signature(secret=endpoint.secret, body=body)
    attempt = attempt_open(delivery=delivery, number=number, url=endpoint.url, now=now)
    answer: transport.HttpAnswer | None
    try:
        answer = transport.post(endpoint.url, body=body, headers=headers,
                                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                                connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS)
    except transport.TransportError as exc:
        answer, error, permanent = None, exc.message, exc.permanent
    else:
        error, permanent = "", False
        attempt.status_code = answer.status_code
        attempt.response_body = answer.body_head
        attempt.duration_ms = answer.duration_ms
        if 300 <= answer.status_code < 400:
            error = f"HTTP {answer.status_code}: redirects are not followed"
        elif answer.status_code == 410:
            error, permanent = "HTTP 410 Gone: the endpoint asked us to stop", True
        elif not 200 <= answer.status_code < 300:
            error = f"HTTP {answer.status_code}"
    if attempt.duration_ms is None:
        attempt.duration_ms = round((timezone.now() - now).total_seconds() * 1000)
    attempt.error = error
    done_at = timezone.now()
    status_code = answer.status_code if answer is not None else None

    if answer is not None and not error:
        attempt.outcome = DeliveryAttempt.Outcome.SUCCEEDED
        if endpoint.failing_since is not None and not delivery.is_test:
            Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None, troubled_runs=0)
            endpoint.failing_since, endpoint.troubled_runs = None, 0
        if successes is not None and answer is not None:
            successes.add(attempt=attempt, delivery=delivery, number=number, status_code=answer.status_code,
                          now=done_at)
            return AttemptResult(attempt.outcome)
        attempt.save(update_fields=ATTEMPT_FIELDS)
        return finish(outcome=attempt.outcome, now=done_at, status_code=status_code, attempts=number)

    retry_in = None
    if not permanent and not delivery.is_test:
        retry_in = retry_delay(attempt_number=number,
                               retry_after=answer.retry_after if answer is not None
                               and answer.status_code in RETRY_AFTER_STATUSES else None)
    attempt.outcome = DeliveryAttempt.Outcome.RETRYING if retry_in is not None else DeliveryAttempt.Outcome.FAILED
    attempt.save(update_fields=ATTEMPT_FIELDS)
    # Only a POST that went out can say the receiver is in trouble; a disabled endpoint or a
    # delivery given up on fails here without costing the receiver anything.
    result = finish(outcome=attempt.outcome, now=done_at, retry_in=retry_in, error=error,
                    status_code=status_code, attempts=number,
                    endpoint_trouble=status_code is None or status_code >= 500 or status_code == 429,
                    no_answer=answer is None)
    if not delivery.is_test:
        _endpoint_failed(endpoint=endpoint, now=done_at, error=error,
                         gone=answer is not None and answer.status_code == 410)
    return result


def _finish(*, delivery: Delivery, lease_until: datetime, outcome: str, now: datetime,
            retry_in: float | None = None, error: str = "", status_code: int | None = None,
            attempts: int | None = None, endpoint_trouble: bool = False, no_answer: bool = False) -> AttemptResult:
    fields: dict = {"last_error": error, "last_status_code": status_code,
                    "attempt_count": delivery.attempt_count if attempts is None else attempts}
    if outcome == DeliveryAttempt.Outcome.SUCCEEDED:
        status = Delivery.Status.SUCCEEDED
        fields["delivered_at"] = now
    else:
        status = Delivery.Status.FAILED
    outbox.finish(delivery, lease_until=lease_until, status=status, retry_in=retry_in, now=now, **fields)
    if outcome == DeliveryAttempt.Outcome.FAILED:
        logger.warning("webhook delivery %s (%s) to %s failed for good: %s", delivery.pk, delivery.message_id,
                       delivery.endpoint.url, error,
                       extra={"delivery_id": delivery.pk, "event_id": delivery.message_id,
                              "endpoint_id": delivery.endpoint_id})
    return AttemptResult(outcome, retry_in, endpoint_trouble=endpoint_trouble, no_answer=no_answer)


def _endpoint_failed(*, endpoint: Endpoint, now: datetime, error: str, gone: bool) -> None:
    if gone:
        endpoint_disable(endpoint=endpoint, now=now, reason=f"the receiver answered 410 Gone at {utc_iso(now)}")
        return
    if endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        return
    if now - endpoint.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        endpoint_disable(endpoint=endpoint, now=now,
                         reason=f"every attempt failed since {utc_iso(endpoint.failing_since)} (last: {error})")


# --- a test event ---------------------------------------------------------------------------------

@transaction.atomic
def endpoint_send_test(*, endpoint: Endpoint) -> Delivery:
    """Queue a `webhook.test` event to one endpoint (even a disabled one, to check a fix). It is tried
    once and does not count towards the endpoint's failures."""
    message_id = ids.event_id()
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint, event=None, message_id=message_id, event_type=TEST_EVENT_TYPE, is_test=True,
        payload=webhook_body(event_type=TEST_EVENT_TYPE, created_at=now,
                             data=test_event_data(endpoint=endpoint, message_id=message_id)),
        next_attempt_at=now, created_at=now,
    )
    # Staff asked to try the endpoint now: its backoff, and a wake-up queued for the backoff's end,
    # must not make them wait.
    Endpoint.objects.filter(pk=endpoint.pk).update(backoff_until=None)
    transaction.on_commit(partial(endpoints_wake, [endpoint.pk], force=True))
    return delivery


# --- redelivery ---------------------------------------------------------------------------------

@transaction.atomic
def delivery_redeliver(*, delivery: Delivery) -> bool:
    """Start a delivery over (same webhook-id, a fresh retry schedule). False while it is being sent."""
    now = timezone.now()
    changed = outbox.start_over(Delivery.objects.filter(pk=delivery.pk).exclude(status=Delivery.Status.SENDING),
                                now=now, last_error="")
    if changed:
        transaction.on_commit(partial(endpoints_wake, [delivery.endpoint_id]))
    return changed == 1
