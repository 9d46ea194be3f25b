"""Run slots: webhook runs never take every slot of a worker that also serves billing and alerts. The
slots are keys in the test's own Redis database (the cache), as in a worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from brightback_site import outbox
from tests.workers import real_services, redis_client, wait_until  # noqa: F401 - real_services: a fixture
from webhooks import runs, services
from webhooks.models import Endpoint
from webhooks.testing import Receiver
from webhooks.tests.test_wake_ups import queued_wake_ups, take_one

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EVERY_QUEUE = ["webhooks", "billing", "alerts", "sweeps", "reports", "celery"]


@pytest.fixture
def broker(db, real_services):  # noqa: ANN001, ANN201, F811 - a Redis of this test's own, empty
    outbox.resume()
    yield redis_client()
    outbox.resume()


@pytest.fixture
def shared_worker(broker) -> Iterator[None]:  # noqa: ANN001
    """This process plays a worker of two slots consuming every queue."""
    runs.worker_started(name="test-worker@host", concurrency=2, queues=EVERY_QUEUE)
    try:
        yield
    finally:
        runs.worker_started(name="", concurrency=0, queues=[])


def test_webhook_runs_leave_one_slot_of_a_shared_worker_to_the_other_queues(settings):
    assert runs.slots_allowed(concurrency=2, queues=EVERY_QUEUE) == 1
    assert runs.slots_allowed(concurrency=4, queues=EVERY_QUEUE) == 3
    assert runs.slots_allowed(concurrency=1, queues=EVERY_QUEUE) == 1  # nothing else could run them
    assert runs.slots_allowed(concurrency=8, queues=["webhooks"]) == 8  # a pool of its own: all of them
    assert runs.slots_allowed(concurrency=2, queues=EVERY_QUEUE[1:]) == 0  # a pool for the other queues
    settings.WEBHOOK_RUN_SLOTS = 2
    assert runs.slots_allowed(concurrency=4, queues=EVERY_QUEUE) == 2
    assert runs.slots_allowed(concurrency=4, queues=EVERY_QUEUE[1:]) == 0


def test_a_wake_up_that_finds_every_run_slot_taken_waits_in_line_without_a_message(
        shared_worker, broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    take_one(broker)
    other_run = runs.slot_take()  # another endpoint's run (a receiver that hangs) holds the only slot
    assert other_run is not None and other_run.key and runs.slot_take() is None

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert receiver.snapshot() == []
    # The endpoint is not held, and nothing is queued to ask again: it waits in line for the slot.
    assert Endpoint.objects.get(pk=endpoint.pk).run_lease_until is None
    assert queued_wake_ups(broker, endpoint.pk) == 0
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="second@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 0  # the gate is still shut: its place in line stands for it

    # The other run ends with no time left to go on: the slot is kept for the endpoint in line, whose
    # wake-up is published, and nobody else takes it meanwhile.
    services._slot_give_back(other_run)
    assert queued_wake_ups(broker, endpoint.pk) == 1
    assert runs.slot_take() is None
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2
    assert len(receiver.snapshot()) == 2
    assert runs.slot_take() is not None  # the run gave its slot back


@pytest.mark.django_db(transaction=True)  # the hanging run is a thread of its own, with its own connection
def test_a_freed_run_slot_goes_to_the_endpoint_waiting_for_it_at_once_without_polling(
        shared_worker, broker, make_endpoint, decide, django_capture_on_commit_callbacks):
    answer = threading.Event()
    with Receiver() as hanging, Receiver() as healthy:
        hanging.respond = lambda got: (200, {}, b"late") if answer.wait(30) else (504, {}, b"")
        slow = make_endpoint(hanging.url, receiver=hanging)
        fast = make_endpoint(healthy.url, receiver=healthy)
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel")
        assert queued_wake_ups(broker, slow.pk) == 1 and queued_wake_ups(broker, fast.pk) == 1
        take_one(broker)
        take_one(broker)  # the two wake-ups, each taken by a worker slot
        slow_runs: list[services.DrainResult] = []

        def slow_run() -> None:
            try:
                slow_runs.append(services.endpoint_deliver_due(endpoint_id=slow.pk))
            finally:
                connection.close()

        thread = threading.Thread(target=slow_run)
        thread.start()
        try:
            hanging.wait_for(lambda got: len(got) == 1, timeout=10)  # the slow run holds the one slot
            assert services.endpoint_deliver_due(endpoint_id=fast.pk).sent == 0
            assert healthy.snapshot() == [] and queued_wake_ups(broker, fast.pk) == 0  # in line, no polling
        finally:
            answer.set()
            thread.join(timeout=30)
        # The slow run ended and went on with the healthy endpoint under its slot: delivered without a
        # message, and the slot is free again afterwards.
        assert [got.answered for got in healthy.snapshot()] == [200]
        assert [run.sent for run in slow_runs] == [1]
        assert broker.llen("webhooks") == 0
        assert Endpoint.objects.get(pk=fast.pk).wake_requested is False
    assert runs.slot_take() is not None


def test_a_slot_a_killed_run_never_handed_on_goes_to_the_endpoint_in_line_at_the_next_sweep(
        shared_worker, broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_RUN_LEASE_SECONDS = 0.5
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    take_one(broker)
    assert runs.slot_take() is not None  # its worker is killed: nobody renews the slot nor hands it on
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert queued_wake_ups(broker, endpoint.pk) == 0

    wait_until(lambda: services.deliveries_sweep() == 1, timeout=10, what="the lapsed slot handed on by the sweep")
    assert queued_wake_ups(broker, endpoint.pk) == 1
    assert runs.slot_take() is None  # kept for the endpoint in line
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1


def _lapsed(slot: runs.Slot) -> bool:
    """The slot's lease has run out (by the Redis server's clock), whether or not a script dropped it yet."""
    client = redis_client()
    seconds, micros = client.time()
    score = client.zscore(slot.key, slot.token)
    return score is None or score < seconds * 1000 + micros // 1000


def test_a_slot_a_killed_run_left_goes_to_the_endpoint_in_line_at_the_next_take_without_a_sweep(
        shared_worker, broker, make_endpoint, decide, django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_RUN_LEASE_SECONDS = 0.5
    with Receiver() as first_receiver, Receiver() as later_receiver:
        waiting = make_endpoint(first_receiver.url, receiver=first_receiver)
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel")
        take_one(broker)
        killed = runs.slot_take()  # its worker is killed: nobody renews the slot nor hands it on
        assert killed is not None and killed.key
        assert services.endpoint_deliver_due(endpoint_id=waiting.pk).sent == 0  # in line, no message
        later = make_endpoint(later_receiver.url, receiver=later_receiver)
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel", email="later@example.com")
        assert queued_wake_ups(broker, waiting.pk) == 0 and queued_wake_ups(broker, later.pk) == 1
        wait_until(lambda: _lapsed(killed), timeout=10, what="the killed run's slot lapsed")

        # The next wake-up to ask for a slot (here another endpoint's; the check on the killed run's
        # endpoint when its hold lapses) finds the killed run's slot free: it goes to the endpoint in
        # line first, whose wake-up is published, and the asker takes its place in line behind it.
        take_one(broker)
        assert services.endpoint_deliver_due(endpoint_id=later.pk).sent == 0
        assert queued_wake_ups(broker, waiting.pk) == 1 and queued_wake_ups(broker, later.pk) == 0
        assert later_receiver.snapshot() == []

        take_one(broker)
        assert services.endpoint_deliver_due(endpoint_id=waiting.pk).sent == 2  # its two events
        # ...and its run went on with the endpoint behind it under the same slot.
        assert [got.answered for got in later_receiver.snapshot()] == [200]
        assert broker.llen("webhooks") == 0
    assert runs.slot_take() is not None


@pytest.fixture
def two_workers(broker):  # noqa: ANN001, ANN201
    """Two workers of two slots consuming every queue (webhook runs may take one of each), played in turn
    by this process: `play(name)` makes it that worker."""

    def play(name: str) -> None:
        runs.worker_started(name=name, concurrency=2, queues=EVERY_QUEUE)

    play("two@host")
    play("one@host")
    try:
        yield play
    finally:
        runs.worker_started(name="", concurrency=0, queues=[])


def test_run_slots_are_shared_by_every_worker(two_workers):
    assert runs.shared_cap() == 2  # one slot of each worker
    first = runs.slot_take()
    # The second run lands on the same worker and still goes: the other worker's webhook slot is free.
    # (A per-worker cap handed it back while that worker's slot went unused.)
    second = runs.slot_take()
    assert first is not None and second is not None and first.shared and second.shared
    two_workers("two@host")
    assert runs.slot_take() is None  # two runs hold the two slots, whichever worker asks
    runs.slot_give_back(first)
    third = runs.slot_take()
    assert third is not None and runs.slot_take() is None


def test_a_killed_runs_slot_frees_itself_with_its_lease_unless_renewed(two_workers, settings):
    settings.WEBHOOK_RUN_LEASE_SECONDS = 0.5
    lost, alive = runs.slot_take(), runs.slot_take()  # `lost`'s worker is killed: nobody renews it
    assert lost is not None and alive is not None and runs.slot_take() is None
    client = redis_client()
    renewed_to = client.zscore(alive.key, alive.token)

    def alive_renewed() -> bool:
        runs.slot_renew(alive)
        return client.zscore(alive.key, alive.token) > renewed_to

    wait_until(alive_renewed, timeout=10, what="the live run's slot renewed")
    taken: list[runs.Slot] = []

    def lost_slot_free() -> bool:
        runs.slot_renew(alive)  # the live run's heartbeat
        slot = runs.slot_take()
        if slot is not None:
            taken.append(slot)
        return slot is not None

    wait_until(lost_slot_free, timeout=10, what="the killed run's slot taken over")
    assert client.zscore(lost.key, lost.token) is None and client.zscore(alive.key, alive.token) is not None
    runs.slot_renew(alive)
    assert runs.slot_take() is None  # the live run and the new one hold both


def test_a_worker_gone_for_good_stops_counting(two_workers, monkeypatch):
    monkeypatch.setattr(runs, "WORKER_SEEN_SECONDS", 0.5)
    two_workers("two@host")  # registered for half a second now, then never heard of again
    two_workers("one@host")
    assert runs.shared_cap() == 2
    wait_until(lambda: runs.shared_cap() == 1, timeout=10, what="the gone worker's allowance dropped")
    assert runs.slot_take() is not None and runs.slot_take() is None


def test_without_redis_runs_go_uncapped_and_still_deliver(
        two_workers, real_services, receiver, make_endpoint, decide,  # noqa: F811 - real_services: the fixture
        django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    real_services.stop()  # the semaphore's Redis is gone (and the broker with it)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")  # its wake-up is left to the sweeper
    slot = runs.slot_take()
    assert slot is not None and slot.key == ""  # not capped: the cap never holds a delivery back
    runs.slot_renew(slot)
    runs.slot_give_back(slot)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1
    assert [got.answered for got in receiver.snapshot()] == [200]
