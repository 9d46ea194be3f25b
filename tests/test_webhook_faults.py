"""Webhooks survive faults: a real `celery worker` (with embedded beat) on a Redis broker the test starts
itself (and may stop: never the machine's), the test database on PostgreSQL, and a real HTTP receiver
on 127.0.0.1 verifying every delivery with the `standardwebhooks` package.

Every wait is bounded. Time is compressed with settings (WEBHOOK_RETRY_SCALE, a short lease, a
one-second sweep), never by sleeping through real retry delays.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from celery import Task
from django.conf import settings
from django.test import Client

from flows.models import CancelSession, Event
from tests.workers import RedisServer, Worker, redis_answers, wait_until
from webhooks import endpoints
from webhooks.models import Delivery, DeliveryAttempt, Endpoint
from webhooks.testing import Received, Receiver, in_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(demo_app, receiver) -> Endpoint:  # noqa: ANN001
    endpoint = endpoints.endpoint_create(app=demo_app, url=receiver.url)
    receiver.secrets.append(endpoint.secret)
    return endpoint


def record_decision(client: Client, data: dict, *, action: str = "cancel") -> float:
    """The customer's two requests: the snippet's /precancel, then the decision on the hosted page.
    Returns how long the decision request took."""
    response = client.post("/precancel", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 200, response.content
    token = response.json()["url"].rsplit("/", 1)[-1]
    started = time.monotonic()
    response = client.post(f"/c/{token}", {"action": action, "reason": "too-expensive"})
    took = time.monotonic() - started
    assert response.status_code == 303, response.status_code
    return took


def record_decisions(snippet_data, count: int) -> list[float]:  # noqa: ANN001
    client = Client()
    return [record_decision(client, snippet_data(email=f"customer{i}@example.com",
                                                 account={"internal_id": f"acct_{i}"}))
            for i in range(count)]


def assert_every_event_arrived_under_its_own_id(receiver: Receiver, events: list[Event]) -> None:
    got = [g for g in receiver.snapshot() if g.answered == 200]
    assert all(g.verified for g in receiver.snapshot()), "a delivery failed standardwebhooks verification"
    # None lost: every event was answered 200 at least once...
    assert {g.webhook_id for g in got} == {e.id for e in events}
    # ...and none delivered under two ids: each body names the id it was sent under, and every
    # copy of an event (at-least-once) is byte-identical, so receivers can dedupe on webhook-id.
    by_id: dict[str, set[bytes]] = {}
    for g in receiver.snapshot():
        assert g.payload["data"]["event_id"] == g.webhook_id
        by_id.setdefault(g.webhook_id, set()).add(g.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())


def wait_for_all(receiver: Receiver, events: list[Event], *, timeout: float, worker: Worker) -> None:
    wanted = {e.id for e in events}
    try:
        receiver.wait_for(lambda got: wanted <= {g.webhook_id for g in got if g.answered == 200}, timeout=timeout)
    except TimeoutError as exc:
        missing = wanted - receiver.ids()
        raise AssertionError(f"{exc}; {len(missing)} events never arrived; worker log:\n{worker.log_tail()}") from None


def test_killing_the_worker_mid_delivery_loses_nothing(worker, receiver, endpoint, snippet_data):
    hanging, release = threading.Event(), threading.Event()
    seen: list[str] = []
    lock = threading.Lock()

    def respond(got: Received) -> tuple[int, dict, bytes]:
        with lock:
            seen.append(got.webhook_id)
            hang = len(seen) == 5
        if hang:  # the fifth delivery hangs until the worker sending it has been killed
            hanging.set()
            release.wait(20)
        return 200, {}, b"ok"

    receiver.respond = respond
    record_decisions(snippet_data, 12)
    events = list(Event.objects.all())
    assert len(events) == 12
    assert hanging.wait(30), f"no delivery reached the receiver; worker log:\n{worker.log_tail()}"

    worker.kill()
    release.set()
    interrupted = Delivery.objects.get(message_id=seen[4])
    assert interrupted.status == Delivery.Status.SENDING  # claimed by the dead worker
    worker.start()

    wait_for_all(receiver, events, timeout=60, worker=worker)
    assert_every_event_arrived_under_its_own_id(receiver, events)
    wait_until(lambda: not Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).exists(), timeout=15,
               what="every delivery succeeded")
    outcomes = list(interrupted.attempts.order_by("number").values_list("outcome", flat=True))
    assert outcomes[0] == DeliveryAttempt.Outcome.INTERRUPTED and outcomes[-1] == DeliveryAttempt.Outcome.SUCCEEDED


def test_a_redis_outage_fails_no_decision_and_loses_no_event(real_services: RedisServer, worker, receiver,
                                                              endpoint, snippet_data, monkeypatch):
    real_services.stop()  # the test's own Redis, on its own port
    tried = []
    real_apply_async = Task.apply_async

    def counting_apply_async(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        tried.append(time.monotonic())
        return real_apply_async(self, *args, **kwargs)

    monkeypatch.setattr(Task, "apply_async", counting_apply_async)
    try:
        wait_until(lambda: not redis_answers(), timeout=15, what="Redis stopped")
        started = time.monotonic()
        record_decisions(snippet_data, 50)
        elapsed = time.monotonic() - started
        # Every decision request succeeded (record_decisions checks each 303) and none waited on the
        # broker: after one refused publish the process stops trying for OUTBOX_PUBLISH_PAUSE_SECONDS,
        # so 50 decisions with a webhook and an alert each touched the broker about once per pause, not
        # once per row (counted, not timed: the machine's load does not change the count).
        windows = int(elapsed // settings.OUTBOX_PUBLISH_PAUSE_SECONDS) + 1
        assert len(tried) <= windows, (len(tried), windows)
        assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 50
        assert CancelSession.objects.filter(status=CancelSession.Status.DECIDED).count() == 50
    finally:
        real_services.start()  # the same port: the worker and this process reconnect to it
        wait_until(redis_answers, timeout=30, what="Redis answers again")

    events = list(Event.objects.all())
    wait_for_all(receiver, events, timeout=120, worker=worker)
    assert_every_event_arrived_under_its_own_id(receiver, events)


def test_the_worker_keeps_delivering_after_its_redis_restarts(real_services: RedisServer, worker, receiver,
                                                             endpoint, snippet_data):
    # Redis goes away while the worker holds an unacknowledged message (a delivery in flight), the case
    # that used to end the worker for good in kombu's restore_unacked.
    hanging, release = threading.Event(), threading.Event()

    def respond(got: Received) -> tuple[int, dict, bytes]:
        if not hanging.is_set():
            hanging.set()
            release.wait(20)
        return 200, {}, b"ok"

    receiver.respond = respond
    record_decisions(snippet_data, 1)
    assert hanging.wait(30), f"no delivery reached the receiver; worker log:\n{worker.log_tail()}"

    real_services.stop()
    release.set()
    # The worker notices the lost connection while Redis is down.
    wait_until(lambda: b"Connection to broker lost" in worker.log_path.read_bytes(),
               timeout=30, what=f"the worker noticed the outage; log:\n{worker.log_tail()}")
    real_services.start()

    record_decisions(snippet_data, 3)  # the customers' decisions, after Redis came back
    events = list(Event.objects.all())
    wait_for_all(receiver, events, timeout=60, worker=worker)
    assert_every_event_arrived_under_its_own_id(receiver, events)
    assert worker.process.poll() is None, f"the worker exited:\n{worker.log_tail()}"
    assert worker.starts == 1  # the same worker, never restarted
    assert b"Unrecoverable error" not in worker.log_path.read_bytes()


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(worker, receiver, endpoint, snippet_data):
    receiver.respond = in_turn((500, {}, b"down"), (500, {}, b"still down"), then=(200, {}, b"ok"))
    started = time.monotonic()
    record_decisions(snippet_data, 1)
    event = Event.objects.get()

    wait_for_all(receiver, [event], timeout=30, worker=worker)

    assert time.monotonic() - started < 30
    assert [(g.webhook_id, g.answered) for g in receiver.snapshot()] == [(event.id, 500), (event.id, 500),
                                                                          (event.id, 200)]
    assert_every_event_arrived_under_its_own_id(receiver, [event])
    delivery = Delivery.objects.get()
    wait_until(lambda: Delivery.objects.get().status == Delivery.Status.SUCCEEDED, timeout=10, what="succeeded")
    attempts = list(delivery.attempts.order_by("number").values_list("number", "status_code", "outcome"))
    assert attempts == [(1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "succeeded")]


def test_a_302_is_a_failure_and_is_not_followed(worker, receiver, endpoint, snippet_data):
    def respond(got: Received) -> tuple[int, dict, bytes]:
        if got.path != "/hooks":
            return 200, {}, b"followed"
        first = sum(1 for g in receiver.snapshot() if g.path == "/hooks") == 1
        return (302, {"Location": "/moved"}, b"") if first else (200, {}, b"ok")

    receiver.respond = respond
    record_decisions(snippet_data, 1)
    event = Event.objects.get()

    wait_for_all(receiver, [event], timeout=30, worker=worker)

    assert [g.path for g in receiver.snapshot()] == ["/hooks", "/hooks"]  # /moved was never requested
    wait_until(lambda: Delivery.objects.get().status == Delivery.Status.SUCCEEDED, timeout=10, what="succeeded")
    first, second = Delivery.objects.get().attempts.order_by("number")
    assert first.status_code == 302 and first.outcome == "retrying" and "not followed" in first.error
    assert second.status_code == 200 and second.outcome == "succeeded"
