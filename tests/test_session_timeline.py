"""The session's admin page tells its story in time order: answers, events, and each channel's part."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from flows import services
from flows.models import App, CancelSession
from flows.timeline import Entry
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

pytestmark = pytest.mark.django_db


def broken_entries(session: CancelSession) -> list[Entry]:
    raise RuntimeError("the alerts table is not there")


@pytest.fixture
def decided(demo_app: App, snippet_data) -> CancelSession:  # noqa: ANN001
    Endpoint.objects.create(app=demo_app, url="https://hooks.example.com/bb")
    # A customer known by account only: no receipt to them, the story of a webhook's delivery.
    session = services.session_start(app=demo_app, data=snippet_data(email=""))
    # A customer reads the page for a while (a decision's time is kept to the second).
    session.created_at -= timedelta(minutes=1)
    session.save(update_fields=["created_at"])
    services.decision_record(session=session, kind="accept", reason_code="too-expensive",
                             feedback="Too pricey", offer_code="discount-30")
    delivery = Delivery.objects.get()
    start = delivery.created_at + timedelta(seconds=1)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, url=delivery.endpoint.url, started_at=start,
                                   status_code=503, outcome=DeliveryAttempt.Outcome.RETRYING)
    DeliveryAttempt.objects.create(delivery=delivery, number=2, url=delivery.endpoint.url,
                                   started_at=start + timedelta(minutes=1), status_code=200,
                                   outcome=DeliveryAttempt.Outcome.SUCCEEDED)
    return session


def rows(admin_client: Client, session: CancelSession) -> list[str]:
    text = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    table = re.search(r'<table class="bb-timeline">.*?</table>', text, re.S)
    assert table, "no timeline on the session's page"
    return [re.sub(r"<[^>]+>", "", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)[1:]]


def test_the_timeline_lists_events_deliveries_and_attempts_in_time_order(admin_client: Client, decided):
    timeline = rows(admin_client, decided)
    whats = [next(part for part in ("Session started", "Decided", "Webhook offer.accepted queued", "offer.accepted",
                                    "Webhook attempt 1", "Webhook attempt 2") if part in row) for row in timeline]
    assert whats == ["Session started", "Decided", "offer.accepted", "Webhook offer.accepted queued",
                     "Webhook attempt 1", "Webhook attempt 2"]
    assert "reason too-expensive · offer discount-30 · “Too pricey”" in timeline[1]
    assert "HTTP 503" in timeline[4] and "HTTP 200" in timeline[5]


def test_a_channel_that_fails_does_not_hide_the_rest(admin_client: Client, decided, settings):
    from flows import timeline

    timeline._contributors.cache_clear()
    settings.BRIGHTBACK_TIMELINE_ENTRIES = ["tests.test_session_timeline.broken_entries",
                                            "webhooks.timeline.timeline_entries"]
    try:
        listed = rows(admin_client, decided)
    finally:
        timeline._contributors.cache_clear()
    assert any("Could not read entries from tests.test_session_timeline" in row for row in listed)
    assert any("Webhook attempt 2" in row for row in listed)


def test_a_decision_in_the_same_second_as_its_offers_comes_after_them(admin_client: Client, demo_app: App,
                                                                      snippet_data):  # noqa: ANN001
    session = services.session_start(app=demo_app, data=snippet_data())
    decision = services.decision_record(session=session, kind="accept", reason_code="too-expensive",
                                        offer_code="discount-30")
    # The offers were seen a moment after the second the decision is stamped with (kept to the second).
    CancelSession.objects.filter(pk=session.pk).update(
        offers_shown_at=decision.created_at + timedelta(milliseconds=400),
        created_at=decision.created_at + timedelta(milliseconds=100))
    listed = rows(admin_client, CancelSession.objects.get(pk=session.pk))
    order = [title for row in listed for title in ("Session started", "Offers shown", "Decided") if title in row]
    assert order == ["Session started", "Offers shown", "Decided"]
