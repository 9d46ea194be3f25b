"""Bounded wake-ups and a quiet sweeper, read from the real broker: the test publishes to its own Redis
database and counts what waits in the `webhooks` queue (no worker consumes it here; the test takes a
message off the queue by hand when it plays the worker)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from brightback_site import outbox
from brightback_site.celery import app as celery_app
from tests.workers import real_services, redis_client  # noqa: F401 - real_services: a fixture
from webhooks import services
from webhooks.models import Delivery, Endpoint
from webhooks.testing import always

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def broker(db, real_services):  # noqa: ANN001, ANN201, F811 - a Redis of this test's own, empty
    outbox.resume()
    yield redis_client()
    outbox.resume()


def queued_wake_ups(client, endpoint_id: int) -> int:  # noqa: ANN001
    """Messages for `endpoint_id` waiting in the webhooks queue (ETA ones included: no worker holds them)."""
    count = 0
    for raw in client.lrange("webhooks", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"]["task"] == "webhooks.deliver" and args == [endpoint_id]:
            count += 1
    return count


def take_one(client) -> None:  # noqa: ANN001
    """What a worker does first: take the oldest message off the queue."""
    assert client.rpop("webhooks") is not None


def test_each_task_has_its_own_queue():
    routes = {name: celery_app.amqp.router.route({}, name, args=(), kwargs={})["queue"].name
              for name in ("webhooks.deliver", "billing.execute", "alerts.send", "outbox.sweep", "webhooks.sweep",
                           "billing.sweep", "alerts.sweep", "flows.sessions_expire", "flows.saves_confirm")}
    assert routes == {"webhooks.deliver": "webhooks", "billing.execute": "billing", "alerts.send": "alerts",
                      "outbox.sweep": "sweeps", "webhooks.sweep": "sweeps", "billing.sweep": "sweeps",
                      "alerts.sweep": "sweeps",
                      "flows.sessions_expire": "sweeps", "flows.saves_confirm": "sweeps"}


def test_a_failing_endpoint_has_one_queued_wake_up_whatever_the_retries_and_batches(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(60):  # more than a batch
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel", email=f"c{n}@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 1

    for _ in range(3):
        take_one(broker)
        result = services.endpoint_deliver_due(endpoint_id=endpoint.pk, batch_size=10)
        assert result.backoff is not None  # the receiver is in trouble: the endpoint backs off...
        assert queued_wake_ups(broker, endpoint.pk) == 1  # ...with its retry queued once, through the gate
        for n in range(5):  # new events meanwhile add nothing
            with django_capture_on_commit_callbacks(execute=True):
                decide("cancel", email=f"more{n}@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_redeliver(delivery=Delivery.objects.filter(endpoint=endpoint).first())
        assert queued_wake_ups(broker, endpoint.pk) == 1
        Endpoint.objects.filter(pk=endpoint.pk).update(backoff_until=timezone.now())  # the backoff ends


def test_an_events_endpoints_pass_their_gates_in_one_statement(broker, receiver, make_endpoint, decide,
                                                               django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    endpoints = [make_endpoint(receiver.url, receiver=receiver) for _ in range(3)]
    table = Endpoint._meta.db_table

    def decide_counting_gates(email: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            with django_capture_on_commit_callbacks(execute=True):
                decide("cancel", email=email)
        return sum(1 for q in queries.captured_queries
                   if q["sql"].startswith("UPDATE") and table in q["sql"] and "wake_requested" in q["sql"])

    # A decision's request pays one round trip for the three gates, not one each...
    assert decide_counting_gates("first@example.com") == 1
    assert [queued_wake_ups(broker, e.pk) for e in endpoints] == [1, 1, 1]
    assert set(Endpoint.objects.values_list("wake_requested", flat=True)) == {True}
    # ...and the gates still hold: a second event finds each wake-up queued and publishes nothing.
    assert decide_counting_gates("second@example.com") == 1
    assert [queued_wake_ups(broker, e.pk) for e in endpoints] == [1, 1, 1]
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoints[0].pk).sent == 2
    assert Endpoint.objects.get(pk=endpoints[0].pk).wake_requested is False  # its run closed its gate
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="third@example.com")
    assert [queued_wake_ups(broker, e.pk) for e in endpoints] == [1, 1, 1]  # only the first's gate opened


def test_a_wake_up_lost_with_the_brokers_queue_is_published_again_by_an_event_after_the_grace_period(
        broker, receiver, make_endpoint, decide, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_PUBLISH_GRACE_SECONDS = 60
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="first@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 1
    broker.delete("webhooks")  # Redis restarted empty: the message is gone, the endpoint's gate is still set

    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="second@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 0  # within the grace period the gate holds
    Endpoint.objects.filter(pk=endpoint.pk).update(wake_requested_at=timezone.now() - timedelta(seconds=61))
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="third@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 1  # no sweeper needed: the next event wakes it

    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 3


def test_a_full_batch_does_not_multiply_runs(broker, receiver, make_endpoint, decide,
                                            django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(25):
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel", email=f"c{n}@example.com")
    take_one(broker)

    result = services.endpoint_deliver_due(endpoint_id=endpoint.pk, batch_size=5)

    assert result.sent == 25 and queued_wake_ups(broker, endpoint.pk) == 0  # five full batches, one run


def test_a_wake_up_while_the_endpoint_is_busy_returns_at_once_and_the_run_looks_again(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    # Another worker's run holds the endpoint (its receiver is slow): this wake-up sends nothing...
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=timezone.now() + timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert receiver.snapshot() == []
    # ...but checks on the holder once, when its hold would lapse (a killed worker's run never looks
    # again, and stops renewing its hold)...
    assert queued_wake_ups(broker, endpoint.pk) == 1
    # ...and leaves the gate shut, so new events publish nothing more while that run goes on.
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="second@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 1
    # The holder, ending, answers it: one wake-up for what is due.
    services._look_again(endpoint.pk, result=services.DrainResult())
    assert queued_wake_ups(broker, endpoint.pk) == 2
    # A holder that died (its hold ran out) does not block the next run.
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=timezone.now() - timedelta(seconds=1))
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2


def test_wake_ups_finding_the_endpoint_busy_queue_one_check_on_its_holder(broker, receiver, make_endpoint):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=timezone.now() + timedelta(minutes=1))

    for _ in range(3):  # the gate's wake-up, a sweep's, an earlier check: each finds the run going on
        assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0

    assert queued_wake_ups(broker, endpoint.pk) == 1  # one check when the hold would lapse, not three chains


def test_the_sweeper_leaves_rows_waiting_in_their_queue_alone(broker, receiver, make_endpoint, decide,
                                                             django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_PUBLISH_GRACE_SECONDS = 60
    first, second = make_endpoint(f"{receiver.url}/a"), make_endpoint(f"{receiver.url}/b")
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")  # one delivery to each endpoint, each woken on commit: two messages queued
    now = timezone.now()
    # Both overdue by far more than the grace, but the workers are still on messages published before
    # them (a long queue): their messages are on their way, and the sweeper publishes nothing.
    Delivery.objects.update(next_attempt_at=now - timedelta(minutes=5))
    outbox.queue_head_seen("webhooks", (now - timedelta(minutes=10)).timestamp())
    assert services.deliveries_sweep(now=now) == 0
    assert broker.llen("webhooks") == 2

    # The workers started a message published after the rows': the rows' own messages were lost.
    outbox.queue_head_seen("webhooks", (now - timedelta(minutes=1)).timestamp())
    assert services.deliveries_sweep(now=now) == 2
    assert queued_wake_ups(broker, first.pk) == queued_wake_ups(broker, second.pk) == 2


def test_the_sweeper_leaves_alone_a_row_whose_message_went_out_just_after_it_fell_due(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_PUBLISH_GRACE_SECONDS = 10
    endpoint = make_endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")  # its wake-up queued
    now = timezone.now()
    due_at = now - timedelta(minutes=5)
    Delivery.objects.update(next_attempt_at=due_at)
    # The request that wrote the row committed, and published its wake-up, two seconds after the row's
    # due time (a slow request); meanwhile another message was published and the workers started it.
    # The row's own message may be just behind it: not lost.
    outbox.queue_head_seen("webhooks", (due_at + timedelta(seconds=2)).timestamp())
    assert services.deliveries_sweep(now=now) == 0
    assert queued_wake_ups(broker, endpoint.pk) == 1

    # The workers are a grace period past the row's due time and have not reached its message: lost.
    outbox.queue_head_seen("webhooks", (due_at + timedelta(seconds=11)).timestamp())
    assert services.deliveries_sweep(now=now) == 1
    assert queued_wake_ups(broker, endpoint.pk) == 2


def test_the_sweeper_wakes_an_overdue_row_when_its_queue_is_empty(broker, receiver, make_endpoint, decide,
                                                                 django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_PUBLISH_GRACE_SECONDS = 60
    endpoint = make_endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    now = timezone.now()
    Delivery.objects.update(next_attempt_at=now - timedelta(minutes=5))
    outbox.queue_head_seen("webhooks", (now - timedelta(minutes=10)).timestamp())
    broker.delete("webhooks")  # the broker lost it (a Redis restarted empty keeps nothing)

    assert services.deliveries_sweep(now=now) == 1
    assert queued_wake_ups(broker, endpoint.pk) == 1
    assert services.deliveries_sweep(now=now) == 0  # once per grace period


def test_a_delivery_whose_lease_ran_out_is_taken_over_at_the_next_sweep_even_behind_a_long_queue(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = Delivery.objects.get(event__session=decide("cancel").session)
    take_one(broker)
    now = timezone.now()
    # A worker was killed mid-POST: its claim, and its hold on the endpoint, ran out a moment ago.
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING,
                                                   lease_expires_at=now - timedelta(seconds=1))
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=now - timedelta(seconds=1), wake_requested=True)
    outbox.queue_head_seen("webhooks", (now - timedelta(hours=1)).timestamp())  # a long queue...
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="other@example.com")  # ...not empty

    assert services.deliveries_sweep(now=now) == 1  # a lapsed lease is never "still on its way"
    assert queued_wake_ups(broker, endpoint.pk) == 1
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SUCCEEDED


def test_deliveries_a_killed_run_left_claimed_are_woken_by_the_next_sweep_not_after_their_lease(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = Delivery.objects.get(event__session=decide("cancel").session)
    take_one(broker)
    now = timezone.now()
    # A run took the endpoint, claimed the delivery and was killed; no wake-up came meanwhile (a quiet
    # endpoint), so none checks on it when its hold lapses. The claim's own lease runs for a minute more.
    claim = services._claim(Q(endpoint_id=endpoint.pk), limit=50, run_since=now - timedelta(seconds=10))
    assert [d.pk for d in claim.rows] == [delivery.pk]
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=now - timedelta(seconds=1))

    assert services.deliveries_sweep(now=now) == 1
    assert services.deliveries_sweep(now=now) == 0  # once per grace period
    assert queued_wake_ups(broker, endpoint.pk) == 1
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SUCCEEDED


def test_the_sweeper_leaves_alone_the_deliveries_of_a_run_still_going(
        broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    take_one(broker)
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=now + timedelta(seconds=5))
    assert services._claim(Q(endpoint_id=endpoint.pk), limit=50, run_since=now).rows

    assert services.deliveries_sweep(now=now) == 0
    assert queued_wake_ups(broker, endpoint.pk) == 0


def test_a_test_event_goes_out_at_once_to_an_endpoint_backing_off(broker, receiver, make_endpoint,
                                                                   django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    Endpoint.objects.filter(pk=endpoint.pk).update(backoff_until=timezone.now() + timedelta(minutes=10),
                                                   troubled_runs=5, wake_requested=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.endpoint_send_test(endpoint=endpoint)
    assert queued_wake_ups(broker, endpoint.pk) == 1
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1
    assert len(receiver.snapshot()) == 1
