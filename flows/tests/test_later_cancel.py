"""A later Cancel is always honoured (flows.later_cancel): a customer who chose to stay and then cancels from
the same page is canceled, once; the save stays on record, no longer in force."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from flows import later_cancel, selectors
from flows.models import CancelSession, Decision, Event
from flows.views import CONFIRM_LATER_CANCEL

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(client, demo_app, snippet_data) -> CancelSession:
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    assert response.status_code == 200
    return CancelSession.objects.get()


def page_url(session: CancelSession) -> str:
    return f"/c/{session.token}"


def accept_offer(client, session: CancelSession) -> str:  # noqa: ANN001
    response = client.post(page_url(session), {"accept": "discount-30", "reason": "too-expensive"})
    assert response.status_code == 303
    return response["Location"]


def confirm_cancel(client, session: CancelSession):  # noqa: ANN001, ANN201
    return client.post(page_url(session), {"action": "cancel", "confirm": CONFIRM_LATER_CANCEL})


def test_a_cancel_from_a_tab_opened_before_the_offer_shows_the_offer_first_and_records_nothing(client, session):
    accept_offer(client, session)
    stale = client.post(page_url(session), {"action": "cancel", "reason": "other"})  # the other tab's form
    html = stale.content.decode()
    assert stale.status_code == 200
    assert "you accepted an offer" in html and "30% off" in html
    assert html.count('data-bb-action="cancel"') == 1
    assert list(Decision.objects.values_list("kind", flat=True)) == ["accept"]


def test_confirming_the_later_cancel_supersedes_the_offer(client, session):
    accept_offer(client, session)
    response = confirm_cancel(client, session)
    assert response.status_code == 303
    assert urlsplit(response["Location"]).path == "/canceled"
    assert "bb_event=session.canceled" in response["Location"]
    accepted, canceled = Decision.objects.order_by("pk")
    assert (accepted.kind, accepted.is_in_force) == ("accept", False)
    assert (canceled.kind, canceled.is_in_force) == ("cancel", True)
    assert (canceled.reason_code, canceled.redirect_url) == ("too-expensive", response["Location"])
    assert CancelSession.objects.get().decision == canceled
    event = Event.objects.get(type="session.canceled")
    assert event.data["reason"]["code"] == "too-expensive"
    assert event.data["supersedes"]["action"] == "accept" and event.data["supersedes"]["offer"] == "discount-30"


def test_a_double_click_or_replay_of_the_later_cancel_records_nothing_new(client, session):
    accept_offer(client, session)
    first = confirm_cancel(client, session)
    second = confirm_cancel(client, session)
    assert second.status_code == 303 and second["Location"] == first["Location"]
    assert Decision.objects.count() == 2
    assert Event.objects.filter(type="session.canceled").count() == 1
    # And a replay of the earlier accept now goes where the decision in force went.
    replay = client.post(page_url(session), {"accept": "discount-30", "reason": "too-expensive"})
    assert replay["Location"] == first["Location"]
    assert Decision.objects.count() == 2


def test_a_replayed_save_still_goes_where_it_went(client, session):
    saved = client.post(page_url(session), {"action": "nevermind"})
    replay = client.post(page_url(session), {"action": "nevermind"})
    assert replay.status_code == 303 and replay["Location"] == saved["Location"]
    assert Decision.objects.count() == 1


def test_a_later_cancel_after_nevermind_is_recorded(client, session):
    client.post(page_url(session), {"action": "nevermind"})
    confirm_cancel(client, session)
    assert sorted((d.kind, d.is_in_force) for d in Decision.objects.all()) == [("cancel", True),
                                                                              ("nevermind", False)]
    assert sorted(Event.objects.values_list("type", flat=True)) == ["session.canceled", "session.nevermind"]


def test_a_later_cancel_after_the_page_expired_is_refused_and_changes_nothing(client, session):
    client.post(page_url(session), {"action": "nevermind"})
    CancelSession.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = confirm_cancel(client, session)
    assert response.status_code == 303  # the decision stands: where it went
    assert list(Decision.objects.values_list("kind", flat=True)) == ["nevermind"]
    stale = selectors.session_by_token(session.token)
    with pytest.raises(later_cancel.SessionClosed):
        later_cancel.decision_cancel_later(session=stale)
    assert Decision.objects.count() == 1


def test_the_session_read_by_token_carries_the_decision_in_force(client, session):
    accept_offer(client, session)
    confirm_cancel(client, session)
    found = selectors.session_by_token(session.token)
    assert found.decision.kind == "cancel"
    if connection.vendor == "postgresql":  # the narrow first-view read is PostgreSQL's (None elsewhere)
        assert selectors.first_view_state(session.token).is_open is False


def test_the_earlier_choice_is_dated_in_the_customers_time_zone(client, demo_app, snippet_data):
    data = snippet_data(context={"locale": "fr-FR", "timezone": "Asia/Tokyo"})  # French times: "H:i"
    client.post("/precancel", data=json.dumps(data), content_type="application/json")
    session = CancelSession.objects.get()
    client.post(page_url(session), {"action": "nevermind"})
    decided = Decision.objects.get().created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    html = client.get(page_url(session)).content.decode()
    assert f"{decided:%H:%M}" in html


def test_a_later_cancel_over_the_apps_limit_is_a_429_and_records_nothing(client, settings, session):
    # Limits here count per day: a minute's window could end in the middle of the test.
    settings.RATE_LIMIT_RULES = {**settings.RATE_LIMIT_RULES, "decision-app": "1/d"}
    accept_offer(client, session)  # the App's one decision of the day
    response = confirm_cancel(client, session)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Please wait a moment" in response.content.decode()
    assert list(Decision.objects.values_list("kind", flat=True)) == [Decision.Kind.ACCEPT]
    assert not Event.objects.filter(type=Event.Type.SESSION_CANCELED).exists()
