"""A run killed mid-POST holds up nothing for long: the deliveries it had claimed go out with the next run
of its endpoint, not when their claim's lease (WEBHOOK_LEASE_SECONDS, the webhook timeout and a minute)
runs out. The run is a process of its own, killed -9 as a worker is."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from tests.workers import real_services, wait_until  # noqa: F401 - real_services: a fixture
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint
from webhooks.testing import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Outcome = DeliveryAttempt.Outcome


def _run(endpoint_id: int) -> None:
    services.endpoint_deliver_due(endpoint_id=endpoint_id)


@pytest.mark.django_db(transaction=True)  # the killed run is another process: what it did is committed
def test_the_deliveries_a_killed_run_claimed_go_out_with_the_next_run_long_before_their_lease(
        real_services, make_endpoint, decide, settings):  # noqa: F811 - real_services: the fixture
    settings.WEBHOOK_RUN_LEASE_SECONDS = 0.5
    first, answer = threading.Event(), threading.Event()

    def respond(got):  # noqa: ANN001, ANN202 - the first POST hangs until its run has been killed
        if not first.is_set():
            first.set()
            answer.wait(30)
        return 200, {}, b""

    with Receiver(respond=respond) as receiver:
        endpoint = make_endpoint(receiver.url, receiver=receiver)
        for n in range(3):
            decide("cancel", email=f"c{n}@example.com")
        deliveries = list(Delivery.objects.filter(endpoint=endpoint).order_by("next_attempt_at", "pk"))
        assert len(deliveries) >= 3
        connections.close_all()  # the run's process opens its own
        run = multiprocessing.get_context("fork").Process(target=_run, args=(endpoint.pk,), daemon=True)
        run.start()
        try:
            assert first.wait(20), "the run never sent"
            run.kill()
            run.join(10)
        finally:
            answer.set()
        killed = time.monotonic()
        # The dead run had claimed every delivery (one batch), under WEBHOOK_LEASE_SECONDS.
        assert Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.SENDING).count() == len(deliveries)
        assert all(d.lease_expires_at is not None and d.lease_expires_at > timezone.now() + timedelta(seconds=30)
                   for d in Delivery.objects.filter(endpoint=endpoint))

        # The wake-up that checks on the holder once its hold lapses (services._check_on_holder).
        wait_until(lambda: not Endpoint.objects.filter(pk=endpoint.pk, run_lease_until__gte=timezone.now()).exists(),
                   timeout=10, what="the killed run's hold lapsed")
        assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == len(deliveries)

        assert time.monotonic() - killed < settings.WEBHOOK_LEASE_SECONDS / 10
        assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {
            Delivery.Status.SUCCEEDED}
        assert receiver.ids() == {d.message_id for d in deliveries}
        # The attempt the killed run left in progress is closed and counted.
        interrupted = deliveries[0]
        outcomes = list(interrupted.attempts.order_by("number").values_list("outcome", flat=True))
        assert outcomes == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
        assert Delivery.objects.get(pk=interrupted.pk).attempt_count == 2


def test_a_run_leaves_alone_a_delivery_a_single_send_holds(receiver, make_endpoint, delivery_for):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    held = delivery_for(endpoint)
    other = delivery_for(endpoint, email="other@example.com")
    claim = services._claim(Q(pk=held.pk), limit=1)  # delivery_attempt's claim: its POST is in flight
    assert [d.pk for d in claim.rows] == [held.pk]

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1

    assert receiver.ids() == {other.message_id}
    held.refresh_from_db()
    assert held.status == Delivery.Status.SENDING and held.lease_expires_at == claim.lease_until


def test_a_run_that_lost_its_hold_on_the_endpoint_stops_before_its_next_delivery(
        receiver, make_endpoint, delivery_for, monkeypatch):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    first, second = delivery_for(endpoint), delivery_for(endpoint, email="other@example.com")
    taken_over = timezone.now() + timedelta(minutes=1)
    real_send = services._send

    def send_then_lose_the_hold(delivery, **kwargs):  # noqa: ANN001, ANN003, ANN202
        result = real_send(delivery, **kwargs)
        # Meanwhile its heartbeat could not renew the hold in time: another run took the endpoint, and
        # the heartbeat's next renewal finds it so.
        Endpoint.objects.filter(pk=endpoint.pk).update(run_lease_until=taken_over)
        for heartbeat in beats:
            heartbeat._renew()
        return result

    beats: list = []
    real_heartbeat = services.runs.Heartbeat

    def heartbeat(**kwargs):  # noqa: ANN003, ANN202
        beat = real_heartbeat(**kwargs)
        beats.append(beat)
        return beat

    monkeypatch.setattr(services, "_send", send_then_lose_the_hold)
    monkeypatch.setattr(services.runs, "Heartbeat", heartbeat)

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1

    assert beats and beats[0].lost
    assert len(receiver.snapshot()) == 1
    assert sorted(Delivery.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == [
        Delivery.Status.PENDING, Delivery.Status.SUCCEEDED]  # the other given back untouched
    assert Endpoint.objects.get(pk=endpoint.pk).run_lease_until == taken_over  # the new holder's, untouched
