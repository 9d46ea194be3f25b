"""The headless API under the customer's rules: their region's rules in the description, offers filtered
by them, what Cancel will do, and a later cancel that supersedes a save as on the page."""

from __future__ import annotations

import json

import pytest

from flows.models import CancelSession, Decision, Event

pytestmark = pytest.mark.django_db


def start(client, snippet_data, **account) -> CancelSession:  # noqa: ANN001, ANN003
    data = snippet_data()
    data["account"].update(account)
    assert client.post("/precancel", json.dumps(data), content_type="application/json").status_code == 200
    return CancelSession.objects.latest("created_at")


def describe(client, session) -> dict:  # noqa: ANN001
    return client.get(f"/api/v1/pages/{session.token}").json()


def decide(client, session, body):  # noqa: ANN001, ANN201
    return client.post(f"/api/v1/pages/{session.token}/decision", json.dumps(body), content_type="application/json")


def test_the_description_carries_the_regions_rules_and_what_cancel_will_do(client, demo_app, snippet_data):
    answer = describe(client, start(client, snippet_data, region="US-CA"))
    assert answer["compliance"] == {"region": "US-CA", "cancel_button": "every_step", "offers": "one",
                                    "receipt": True, "max_offers": 1}
    assert answer["cancel"]["effective"] == "period_end" and answer["cancel"]["on_every_step"] is True
    assert answer["cancel"]["label"] == "Cancel at the end of the billing period"
    assert answer["cancel"]["summary"] == "Your subscription ends at the end of the current billing period."
    # At most one offer for any reason: the first the page would show for it.
    for reason in ["", *(r["code"] for r in answer["reasons"])]:
        shown = [o for o in answer["offers"] if not o["reasons"] or reason in o["reasons"]]
        assert len(shown) <= 1, reason


def test_a_minnesota_customer_is_described_no_offer_and_cannot_accept_one(client, demo_app, snippet_data):
    session = start(client, snippet_data, country="US", region="US-MN")
    answer = describe(client, session)
    assert answer["offers"] == [] and answer["compliance"]["max_offers"] == 0
    refused = decide(client, session, {"action": "accept", "reason": "too-expensive", "offer": "discount-30"})
    assert refused.status_code == 400
    assert not Decision.objects.exists()


def test_a_later_cancel_supersedes_an_accepted_offer_once(client, demo_app, snippet_data):
    session = start(client, snippet_data)
    accepted = decide(client, session, {"action": "accept", "reason": "too-expensive", "offer": "discount-30"})
    assert accepted.json()["event"] == "offer.accepted"
    assert describe(client, session)["decision"]["event"] == "offer.accepted"

    canceled = decide(client, session, {"action": "cancel"})
    assert canceled.status_code == 200 and canceled.json()["event"] == "session.canceled"
    again = decide(client, session, {"action": "cancel"})
    assert again.json() == canceled.json()
    replayed_accept = decide(client, session, {"action": "accept", "reason": "too-expensive", "offer": "discount-30"})
    assert replayed_accept.json() == canceled.json()
    assert sorted(Decision.objects.values_list("kind", flat=True)) == ["accept", "cancel"]
    assert Event.objects.filter(type="session.canceled").count() == 1
    assert describe(client, session)["decision"] == canceled.json()
