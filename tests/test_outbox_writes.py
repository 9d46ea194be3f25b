"""What the outbox costs a decision's request: each channel's rows in one INSERT built once, and a wake-up
published on one kept Redis client, its queue declared once, read back from a Redis of the test's own as a
worker reads it."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from brightback_site import outbox
from brightback_site.celery import app as celery_app
from receipts.models import Receipt
from receipts.tasks import receipt_send_task
from tests.workers import real_services, redis_client  # noqa: F401 - real_services: a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(db, real_services):  # noqa: ANN001, ANN201, F811 - a Redis of this test's own, empty
    outbox.resume()
    yield redis_client()
    outbox.resume()


def _messages(client, queue: str) -> list[dict]:  # noqa: ANN001
    """The queue's messages, oldest first, with their body decoded as a worker decodes it."""
    found = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        message = json.loads(raw)
        message["args"] = json.loads(base64.b64decode(message["body"]))[0]
        found.append(message)
    return found


def test_wake_ups_reuse_one_redis_client_and_reach_the_queue_as_celery_sends_them(broker):
    channel_type = type(celery_app.connection_for_write().default_channel)
    made = []
    create = channel_type._create_client

    def counted(self, asynchronous=False):  # noqa: ANN001, ANN202 - counts, then builds the real client
        made.append(asynchronous)
        return create(self, asynchronous=asynchronous)

    channel_type._create_client = counted
    try:
        for pk in (11, 12, 13):
            assert outbox.publish(receipt_send_task, args=[pk])
    finally:
        channel_type._create_client = create
    # Before: kombu built a Redis client (its ~170 response callbacks) for every message.
    assert made.count(False) <= 1
    messages = _messages(broker, outbox.queue_of(receipt_send_task.name))
    assert [m["args"] for m in messages] == [[11], [12], [13]]
    assert {m["headers"]["task"] for m in messages} == {"receipts.send"}
    assert [m["headers"]["argsrepr"] for m in messages] == ["[11]", "[12]", "[13]"]
    assert all(m["headers"]["runnable_at"] > 0 for m in messages)


def test_a_channel_keeps_its_client_until_its_pool_is_replaced(broker):
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        channel._disconnect_pools()  # what a fork or a lost connection does
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool
            third.lpush("receipts", "x")  # the new pool's connections work
        with channel.conn_or_acquire(client=first) as given:
            assert given is first  # a client kombu passes in is used as it is
    assert broker.llen("receipts") == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the one-INSERT path is PostgreSQL's")
def test_a_channels_rows_are_written_in_one_insert_as_bulk_create_writes_them(demo_app, snippet_data):
    from django.test import Client

    from flows import selectors, services
    from flows.models import Event

    sessions = []
    for n in range(3):
        response = Client().post("/precancel", data=json.dumps(snippet_data(email=f"c{n}@example.com")),
                                 content_type="application/json")
        sessions.append(selectors.session_by_token(response.json()["url"].rsplit("/", 1)[1]))
    with transaction.atomic():
        services.decision_record(session=sessions[0], kind="cancel")
    kept = Receipt.objects.get()
    events = []
    with transaction.atomic():
        for session in sessions[1:]:
            services.decision_record(session=session, kind="cancel")
            events.append(Event.objects.get(session=session))
    Receipt.objects.exclude(pk=kept.pk).delete()
    rows = [Receipt(app_id=e.app_id, session_id=e.session_id, event=e, kind="cancel", recipient=f"r{i}@example.com",
                    language="en", created_at=e.created_at, next_attempt_at=e.created_at)
            for i, e in enumerate(events)]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        keys = outbox.insert(rows)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("INSERT")]) == 1
    assert keys == [row.pk for row in rows] and all(not row._state.adding for row in rows)
    stored = {r.pk: r for r in Receipt.objects.filter(pk__in=keys)}
    for row in rows:
        got = stored[row.pk]
        assert (got.event_id, got.recipient, got.status, got.attempt_count) == (row.event_id, row.recipient,
                                                                                 "pending", 0)
        assert got.updated_at is not None and got.created_at == row.created_at
    # The same columns as the ORM's own bulk_create leaves (defaults, auto_now), field by field.
    fields = [f.attname for f in Receipt._meta.concrete_fields if f.attname not in ("id", "event_id", "session_id",
                                                                                  "recipient", "updated_at",
                                                                                  "created_at", "next_attempt_at")]
    assert {f: getattr(stored[keys[0]], f) for f in fields} == {f: getattr(kept, f) for f in fields}
