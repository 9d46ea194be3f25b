"""A webhook attempt's row: opened before its POST (`attempt_open`), and the successful attempts of one
claim recorded together (`Successes`): two UPDATEs in one transaction per batch instead of two per
attempt."""

from __future__ import annotations

import time
from datetime import datetime

from django.db import transaction

from brightback_site import outbox

from .models import Delivery, DeliveryAttempt

# Successful attempts are recorded a batch at a time (two UPDATEs in one transaction) instead of two
# UPDATEs each; at most this many seconds' worth of them waits to be recorded.
RECORD_EVERY_SECONDS = 1.0
ATTEMPT_FIELDS = ["status_code", "response_body", "duration_ms", "error", "outcome"]


class Successes:
    """Successful attempts of one claim, waiting to be recorded together.

    Each attempt row was committed (in progress) before its POST, so a worker killed before `record`
    still leaves every attempt it started visible: the next claim of those deliveries (their lease
    runs out) closes and counts each as interrupted and sends it again, under the same webhook-id,
    exactly as for a worker killed mid-POST. Receivers dedupe on webhook-id (DESIGN §5)."""

    def __init__(self, lease_until: datetime) -> None:
        self.lease_until = lease_until
        self.attempts: list[DeliveryAttempt] = []
        self.deliveries: list[Delivery] = []
        self.since = 0.0

    def add(self, *, attempt: DeliveryAttempt, delivery: Delivery, number: int, status_code: int,
            now: datetime) -> None:
        if not self.attempts:
            self.since = time.monotonic()
        delivery.delivered_at, delivery.last_error, delivery.last_status_code = now, "", status_code
        delivery.attempt_count = number
        self.attempts.append(attempt)
        self.deliveries.append(delivery)

    def due(self) -> bool:
        return bool(self.attempts) and time.monotonic() - self.since >= RECORD_EVERY_SECONDS

    def record(self) -> None:
        if not self.attempts:
            return
        with transaction.atomic():
            # An attempt a takeover already closed as interrupted keeps that outcome.
            outbox.update_each(self.attempts, fields=ATTEMPT_FIELDS,
                               where={"outcome": DeliveryAttempt.Outcome.IN_PROGRESS})
            outbox.finish_many(self.deliveries, lease_until=self.lease_until, status=Delivery.Status.SUCCEEDED,
                               fields=["delivered_at", "last_error", "last_status_code", "attempt_count"])
        self.attempts, self.deliveries = [], []


def attempt_open(*, delivery: Delivery, number: int, url: str, now: datetime) -> DeliveryAttempt:
    """Write the attempt row, in progress, before the POST: committed, so a worker killed during the POST
    leaves it for the next claim to close and count.

    On PostgreSQL it is one round trip that commits without waiting for the disk (synchronous_commit
    off for this statement only): the row is visible at once to every other connection, which is all a
    killed worker needs; only a crash of PostgreSQL itself in the next fraction of a second could lose
    it, and then the delivery (claimed in a durable commit) is still sent again, just not counted."""
    attempt = DeliveryAttempt(delivery=delivery, number=number, url=url, started_at=now)
    connection = transaction.get_connection()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        attempt.save(force_insert=True)
        return attempt
    meta = DeliveryAttempt._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    # Two statements in one message run as one implicit transaction, which SET LOCAL applies to.
    sql = (f"SET LOCAL synchronous_commit TO OFF; INSERT INTO {quote(meta.db_table)} "
           f"({', '.join(quote(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))}) "
           f"RETURNING {quote(meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(attempt, True), connection) for f in fields])
        cursor.nextset()
        attempt.pk = cursor.fetchone()[0]
    attempt._state.adding, attempt._state.db = False, connection.alias
    return attempt
