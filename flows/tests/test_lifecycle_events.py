"""Events beat produces: `session.abandoned` for expired open sessions, `save.confirmed` after the watch
window for saved customers who have not canceled since. Each is recorded once however often beat runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flows import services
from flows.models import CancelSession, Decision, Event
from flows.snippet_data import clean_snippet_data
from flows.tasks import saves_confirm, sessions_expire

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def make(*, opened: bool = True, **data) -> CancelSession:  # noqa: ANN003
        session = services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(**data)))
        if opened:  # the customer opened the page, as the sessions these tests mean
            services.session_opened(session_pk=session.pk)
            session.refresh_from_db()
        return session

    return make


@pytest.fixture
def saved(start):  # noqa: ANN001, ANN201
    """A decision recorded `days_ago` days ago."""

    def make(kind: str = "nevermind", *, days_ago: float, **data) -> Decision:  # noqa: ANN003
        decision = services.decision_record(session=start(**data), kind=kind, reason_code="too-expensive",
                                            offer_code="discount-30" if kind == "accept" else "")
        Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
        decision.refresh_from_db()
        return decision

    return make


def test_an_expired_open_session_is_abandoned_once_with_its_event(start):
    session = start()
    CancelSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert services.sessions_abandon_expired() == 1
    assert services.sessions_abandon_expired() == 0

    session.refresh_from_db()
    assert session.status == CancelSession.Status.ABANDONED
    event = Event.objects.get(session=session)
    assert event.type == "session.abandoned" and event.id.startswith("evt_")
    assert event.data["email"] == "jane@example.com" and event.data["reason"] is None
    assert event.data["expired_at"] == session.expires_at.isoformat()


def test_a_session_never_opened_expires_quietly_without_event_webhook_or_alert(start, demo_app):
    from alerts.models import AlertDelivery
    from alerts.services import rule_create
    from webhooks.models import Delivery, Endpoint

    Endpoint.objects.create(app=demo_app, url="http://127.0.0.1:9/all")
    rule_create(app=demo_app, events=["session.abandoned"], recipients=["team@example.com"])
    # Three loads of the account page post /precancel three times; the customer never clicks Cancel.
    loads = [start(opened=False, email=f"load{n}@example.com") for n in range(3)]
    visit = start(email="visit@example.com")
    CancelSession.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    assert services.sessions_abandon_expired(batch=2) == 1  # only the visit was abandoned

    statuses = dict(CancelSession.objects.values_list("pk", "status"))
    assert [statuses[s.pk] for s in loads] == [CancelSession.Status.EXPIRED] * 3
    assert statuses[visit.pk] == CancelSession.Status.ABANDONED
    assert list(Event.objects.values_list("session_id", flat=True)) == [visit.pk]
    assert Delivery.objects.count() == 1 and AlertDelivery.objects.count() == 1


def test_opening_the_page_records_when_once_and_a_decision_opens_an_unopened_session(start, client):
    session = start(opened=False)
    assert session.opened_at is None
    client.get(f"/c/{session.token}")
    session.refresh_from_db()
    first = session.opened_at
    assert first is not None
    client.get(f"/c/{session.token}")
    session.refresh_from_db()
    assert session.opened_at == first  # a later view does not move it

    unopened = start(opened=False, email="api@example.com")
    services.decision_record(session=unopened, kind="cancel")
    unopened.refresh_from_db()
    assert unopened.opened_at is not None


def test_open_sessions_not_yet_expired_and_decided_sessions_are_left_alone(start):
    open_session = start()
    decided = start(email="decided@example.com")
    services.decision_record(session=decided, kind="cancel")
    CancelSession.objects.filter(pk=decided.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert sessions_expire.run() == 0

    open_session.refresh_from_db()
    assert open_session.status == CancelSession.Status.OPEN
    assert not Event.objects.filter(type="session.abandoned").exists()


def test_a_saved_customer_is_confirmed_after_the_watch_window_once(saved, settings):
    settings.SAVE_WATCH_DAYS = 30
    decision = saved("accept", days_ago=31)

    assert services.saves_confirm_due() == 1
    assert saves_confirm.run() == 0

    event = Event.objects.get(session=decision.session, type="save.confirmed")
    assert event.data["offer"]["code"] == "discount-30"
    assert event.data["reason"]["code"] == "too-expensive"
    assert event.data["watch_days"] == 30 and event.data["saved_at"] == decision.created_at.isoformat()


def test_a_save_inside_the_watch_window_is_not_confirmed_yet(saved, settings):
    settings.SAVE_WATCH_DAYS = 30
    saved("nevermind", days_ago=29)
    assert services.saves_confirm_due() == 0
    assert not Event.objects.filter(type="save.confirmed").exists()


def test_a_customer_who_canceled_since_is_not_confirmed(saved, settings):
    settings.SAVE_WATCH_DAYS = 30
    saved("nevermind", days_ago=31)
    saved("cancel", days_ago=10)  # same account (acct_42), later

    assert services.saves_confirm_due() == 0


def test_another_customers_cancel_does_not_block_a_confirmation(saved, settings):
    settings.SAVE_WATCH_DAYS = 30
    saved("nevermind", days_ago=31)
    saved("cancel", days_ago=10, email="other@example.com", account={"internal_id": "acct_other"})

    assert services.saves_confirm_due() == 1


def test_cancels_are_never_confirmed_as_saves(saved, settings):
    settings.SAVE_WATCH_DAYS = 30
    saved("cancel", days_ago=31)
    assert services.saves_confirm_due() == 0


def test_expired_sessions_are_closed_in_batches_until_none_is_left(start):
    sessions = [start(email=f"c{n}@example.com") for n in range(7)]
    CancelSession.objects.filter(pk__in=[s.pk for s in sessions]).update(
        expires_at=timezone.now() - timedelta(minutes=1))

    # One run closes them all, three per transaction, where beat used to close a fixed number a minute.
    assert services.sessions_abandon_expired(batch=3) == 7
    assert CancelSession.objects.filter(status=CancelSession.Status.ABANDONED).count() == 7
    assert Event.objects.filter(type="session.abandoned").count() == 7


def _expire(sessions: list[CancelSession]) -> None:
    CancelSession.objects.filter(pk__in=[s.pk for s in sessions]).update(
        expires_at=timezone.now() - timedelta(minutes=1))


def test_each_abandoned_session_gets_every_channels_rows_with_its_event(start, demo_app):
    from alerts.models import AlertDelivery
    from alerts.services import rule_create
    from webhooks.models import Delivery, Endpoint
    from webhooks.services import webhook_body

    Endpoint.objects.create(app=demo_app, url="http://127.0.0.1:9/all")
    Endpoint.objects.create(app=demo_app, url="http://127.0.0.1:9/cancels", event_types=["session.canceled"])
    rule_create(app=demo_app, events=["session.abandoned"], recipients=["team@example.com"])
    sessions = [start(email=f"c{n}@example.com") for n in range(4)]
    _expire(sessions)

    assert services.sessions_abandon_expired() == 4

    for session in sessions:
        event = Event.objects.get(session=session, type="session.abandoned")
        delivery = Delivery.objects.get(event=event)  # only the endpoint that wants abandoned sessions
        assert delivery.endpoint.url.endswith("/all") and delivery.message_id == event.id
        assert delivery.payload == webhook_body(event_type=event.type, created_at=event.created_at, data=event.data)
        alert = AlertDelivery.objects.get(event=event)
        assert alert.recipients == ["team@example.com"] and alert.data == event.data


def test_closing_more_expired_sessions_costs_no_more_queries(start, demo_app):
    from webhooks.models import Endpoint

    Endpoint.objects.create(app=demo_app, url="http://127.0.0.1:9/all")
    counts = []
    # The first run also reads the App's channel settings into this process's memory; compare the others.
    for size in (1, 2, 6):
        sessions = [start(email=f"s{size}-{n}@example.com") for n in range(size)]
        _expire(sessions)
        with CaptureQueriesContext(connection) as queries:
            assert services.sessions_abandon_expired() == size
        counts.append(len(queries))
    assert counts[1] == counts[2]


seen_events: list[Event] = []


def remember_event(event: Event) -> None:
    """A channel with no batch form (see the next test)."""
    seen_events.append(event)


def test_a_channel_without_a_batch_form_is_handed_each_event(start, settings):
    settings.BRIGHTBACK_EVENT_HANDLERS = ["flows.tests.test_lifecycle_events.remember_event"]
    seen_events.clear()
    sessions = [start(email=f"c{n}@example.com") for n in range(3)]
    _expire(sessions)

    assert services.sessions_abandon_expired() == 3

    assert sorted(e.session_id for e in seen_events) == sorted(s.pk for s in sessions)
    assert all(e.type == "session.abandoned" for e in seen_events)


def test_a_session_already_abandoned_never_gets_a_second_event(start):
    session = start()
    _expire([session])
    assert services.sessions_abandon_expired() == 1
    # Even reopened by hand, the Event table's unique key refuses a second `session.abandoned`,
    # and the whole batch rolls back with it.
    CancelSession.objects.filter(pk=session.pk).update(status=CancelSession.Status.OPEN)
    with pytest.raises(IntegrityError):
        services.sessions_abandon_expired()
    assert Event.objects.filter(session=session).count() == 1
    session.refresh_from_db()
    assert session.status == CancelSession.Status.OPEN
