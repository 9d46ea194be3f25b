"""Run slots: webhook runs never take every slot of a worker that also serves billing and alerts. The
slots are keys in the test's own Redis database (the cache), as in a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from brightback_site import outbox
from tests.workers import real_services, redis_client  # noqa: F401 - real_services: a fixture
from webhooks import runs, services
from webhooks.models import Endpoint
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
    settings.WEBHOOK_RUN_SLOTS = 2
    assert runs.slots_allowed(concurrency=4, queues=EVERY_QUEUE) == 2


def test_a_wake_up_that_finds_every_run_slot_taken_hands_its_endpoint_back_at_once(
        shared_worker, broker, receiver, make_endpoint, decide, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel")
    take_one(broker)
    other_run = runs.slot_take()  # another endpoint's run (a receiver that hangs) holds the only slot
    assert other_run is not None and other_run.key and runs.slot_take() is None

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert receiver.snapshot() == []
    # The endpoint is not held, and its wake-up is queued again (a second later), once.
    assert Endpoint.objects.get(pk=endpoint.pk).run_lease_until is None
    assert queued_wake_ups(broker, endpoint.pk) == 1
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="second@example.com")
    assert queued_wake_ups(broker, endpoint.pk) == 1  # the gate is still shut: that message stands for it

    runs.slot_give_back(other_run)
    take_one(broker)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2
    assert len(receiver.snapshot()) == 2
    assert runs.slot_take() is not None  # the run gave its slot back
