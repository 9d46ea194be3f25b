"""Events beat produces: `session.abandoned` for expired open sessions, `save.confirmed` after the watch
window for saved customers who have not canceled since. Each is recorded once however often beat runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flows import services
from flows.models import CancelSession, Decision, Event
from flows.snippet_data import clean_snippet_data
from flows.tasks import saves_confirm, sessions_expire

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def make(**data) -> CancelSession:  # noqa: ANN003
        return services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(**data)))

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
