"""The outbox: delivery rows are written in the decision's transaction and published only after it commits."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from brightback_site import outbox
from flows.models import Event
from webhooks import services
from webhooks.models import Delivery
from webhooks.tasks import webhook_deliver

pytestmark = pytest.mark.django_db


def test_a_decision_writes_one_delivery_per_matching_active_endpoint(make_endpoint, decide, demo_app):
    every = make_endpoint("http://127.0.0.1:9/every")
    cancels = make_endpoint("http://127.0.0.1:9/cancels", event_types=["session.canceled"])
    saves = make_endpoint("http://127.0.0.1:9/saves", event_types=["session.nevermind", "offer.accepted"])
    make_endpoint("http://127.0.0.1:9/paused", is_active=False)

    decision = decide("cancel")

    event = Event.objects.get(session=decision.session)
    deliveries = Delivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {every.pk, cancels.pk}
    assert saves.pk not in {d.endpoint_id for d in deliveries}
    for delivery in deliveries:
        assert delivery.message_id == event.id and delivery.status == Delivery.Status.PENDING
        assert delivery.payload == {"type": "session.canceled",
                                    "timestamp": services.utc_iso(event.created_at), "data": event.data}


def test_deliveries_roll_back_with_the_decision(make_endpoint, decide):
    make_endpoint("http://127.0.0.1:9/every")
    with pytest.raises(RuntimeError), transaction.atomic():
        decide("cancel")
        assert Delivery.objects.count() == 1
        raise RuntimeError("the request failed after the decision")
    assert Delivery.objects.count() == 0 and Event.objects.count() == 0


def test_deliveries_are_published_only_after_commit(make_endpoint, decide, django_capture_on_commit_callbacks,
                                                    monkeypatch):
    sent: list[list] = []
    monkeypatch.setattr(webhook_deliver, "apply_async", lambda args, countdown=None, **kwargs: sent.append(args))
    make_endpoint("http://127.0.0.1:9/every")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decide("cancel")
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert sent == [[Delivery.objects.get().endpoint_id]]


def test_a_broker_outage_does_not_fail_the_decision_and_leaves_the_row_for_the_sweeper(
        make_endpoint, decide, django_capture_on_commit_callbacks, monkeypatch):
    calls: list[float] = []

    def broker_down(args, countdown=None, **kwargs):  # noqa: ANN001, ANN202 - kombu's error for a refused connection
        calls.append(time.monotonic())
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(webhook_deliver, "apply_async", broker_down)
    outbox.resume()
    make_endpoint("http://127.0.0.1:9/one")
    make_endpoint("http://127.0.0.1:9/two")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            decision = decide("cancel")
        with django_capture_on_commit_callbacks(execute=True):
            decide("nevermind", email="second@example.com")
    finally:
        outbox.resume()
    assert decision.kind == "cancel"
    # One failed publish, then the process stops trying for a while instead of waiting on the broker.
    assert len(calls) == 1
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 4
