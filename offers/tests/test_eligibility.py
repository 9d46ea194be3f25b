"""Offer rules: audiences, a monthly-value floor, trials, a per-customer cap and the App's blocklist."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from flows.models import Audience, CancelSession, Decision
from offers.models import Offer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offers_for_every_reason(demo_app) -> None:  # noqa: ANN001
    for offer in Offer.objects.filter(flow__app=demo_app):
        offer.reasons.clear()


def start(client, snippet_data, **overrides) -> CancelSession:  # noqa: ANN001, ANN003
    response = client.post("/precancel", data=json.dumps(snippet_data(**overrides)), content_type="application/json")
    assert response.status_code == 200, response.content
    return CancelSession.objects.order_by("-pk").first()


def shown(client, session: CancelSession) -> list[str]:  # noqa: ANN001
    html = client.post(f"/c/{session.token}", {"reason": "too-expensive", "action": "continue"}).content.decode()
    return [code for code in ("discount-30", "pause-2", "talk-to-us") if f'data-bb-offer="{code}"' in html]


def test_without_rules_every_offer_is_shown(client, demo_app, snippet_data):
    session = start(client, snippet_data)
    assert session.offer_codes is None
    assert shown(client, session) == ["discount-30", "pause-2", "talk-to-us"]


def test_an_offer_limited_to_an_audience_is_hidden_from_everyone_else(client, demo_app, snippet_data):
    teams = Audience.objects.create(app=demo_app, name="Teams", rules={
        "field": "custom.seats", "op": "gte", "value": 5})
    Offer.objects.get(code="pause-2").audiences.add(teams)
    assert shown(client, start(client, snippet_data)) == ["discount-30", "talk-to-us"]
    assert "pause-2" in shown(client, start(client, snippet_data, custom={"seats": 12}))


def test_an_offer_is_hidden_during_a_trial_and_below_its_value_floor(client, demo_app, snippet_data):
    Offer.objects.filter(code="discount-30").update(hide_during_trial=True)
    Offer.objects.filter(code="pause-2").update(min_monthly_value=40)
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    trialing = start(client, snippet_data, account={"internal_id": "a1", "value": 49, "trial_ends_at": tomorrow})
    assert shown(client, trialing) == ["pause-2", "talk-to-us"]
    cheap_yearly = start(client, snippet_data, account={"internal_id": "a2", "value": 300, "plan_term": "year"})
    assert shown(client, cheap_yearly) == ["discount-30", "talk-to-us"]   # 25 a month is below 40


def test_the_same_discount_is_not_offered_twice_within_its_cap(client, demo_app, snippet_data):
    Offer.objects.filter(code="discount-30").update(cap_days=90)
    first = start(client, snippet_data)
    assert "discount-30" in shown(client, first)
    client.post(f"/c/{first.token}", {"reason": "too-expensive", "accept": "discount-30"})
    assert Decision.objects.get().offer_code == "discount-30"

    second = start(client, snippet_data)
    assert shown(client, second) == ["pause-2", "talk-to-us"]
    refused = client.post(f"/c/{second.token}", {"reason": "too-expensive", "accept": "discount-30"})
    assert refused.status_code == 400
    # Another customer still gets it; and once the cap has passed, so does this one.
    assert "discount-30" in shown(client, start(client, snippet_data, email="bo@example.com",
                                                account={"internal_id": "acct_other"}))
    Decision.objects.update(created_at=timezone.now() - timedelta(days=91))
    assert "discount-30" in shown(client, start(client, snippet_data))


def test_blocklisted_accounts_never_see_offers(client, demo_app, snippet_data):
    demo_app.offer_blocklist = "acct_42\nabuser@example.com"
    demo_app.save()
    assert shown(client, start(client, snippet_data)) == []
    assert shown(client, start(client, snippet_data, email="Abuser@example.com", account={"internal_id": "x"})) == []
    assert shown(client, start(client, snippet_data, account={"internal_id": "acct_43"})) != []
