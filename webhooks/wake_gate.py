"""The wake-up gate: at most one queued wake-up per endpoint (Endpoint.wake_requested), and at most one
per grace period when the queued one may have been lost.

`services.endpoints_wake` publishes a wake-up only for the endpoints whose gate this opens; the run
that looks closes it again (services.endpoint_deliver_due, services._look_again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Endpoint


def open_many(endpoint_ids: Sequence[int]) -> list[int]:
    """Set wake_requested on those of `endpoint_ids` that had it clear, or set for longer than
    WEBHOOK_PUBLISH_GRACE_SECONDS (its message can have been lost with the broker's queues), and return
    them (sorted): one UPDATE … RETURNING however many endpoints an event has, so a decision's request
    pays one round trip for its webhooks, not one per endpoint. The others have a wake-up queued
    already, which will see the new rows."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WEBHOOK_PUBLISH_GRACE_SECONDS)
    if len(endpoint_ids) <= 1:
        clear = Q(wake_requested=False) | Q(wake_requested_at__isnull=True) | Q(wake_requested_at__lt=stale)
        return [pk for pk in endpoint_ids
                if Endpoint.objects.filter(clear, pk=pk).update(wake_requested=True, wake_requested_at=now)]
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = Endpoint._meta
    flag = quote(meta.get_field("wake_requested").column)
    at_field = meta.get_field("wake_requested_at")
    at = quote(at_field.column)
    pk = quote(meta.pk.column)
    sql = (f"UPDATE {quote(meta.db_table)} SET {flag} = %s, {at} = %s "
           f"WHERE {pk} IN ({', '.join(['%s'] * len(endpoint_ids))}) "
           f"AND ({flag} = %s OR {at} IS NULL OR {at} < %s) RETURNING {pk}")
    params = [True, at_field.get_db_prep_value(now, connection), *endpoint_ids, False,
              at_field.get_db_prep_value(stale, connection)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())
