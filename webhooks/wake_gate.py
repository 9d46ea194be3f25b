"""The wake-up gate: at most one queued wake-up per endpoint (Endpoint.wake_requested).

`services.endpoints_wake` publishes a wake-up only for the endpoints whose gate this opens; the run
that looks closes it again (services.endpoint_deliver_due, services._look_again).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from .models import Endpoint


def open_many(endpoint_ids: Sequence[int]) -> list[int]:
    """Set wake_requested on those of `endpoint_ids` that had it clear, and return them (sorted): one
    UPDATE … RETURNING however many endpoints an event has, so a decision's request pays one round trip
    for its webhooks, not one per endpoint. The others have a wake-up queued already, which will see
    the new rows."""
    if len(endpoint_ids) <= 1:
        return [pk for pk in endpoint_ids
                if Endpoint.objects.filter(pk=pk, wake_requested=False).update(wake_requested=True)]
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = Endpoint._meta
    flag = quote(meta.get_field("wake_requested").column)
    pk = quote(meta.pk.column)
    sql = (f"UPDATE {quote(meta.db_table)} SET {flag} = %s WHERE {pk} IN ({', '.join(['%s'] * len(endpoint_ids))}) "
           f"AND {flag} = %s RETURNING {pk}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *endpoint_ids, False])
        return sorted(row[0] for row in cursor.fetchall())
