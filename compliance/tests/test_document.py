"""The flow document's `compliance` section: imported with clear messages (an invalid document changes
nothing), exported, and applied to the sessions that start after it."""

from __future__ import annotations

import json

import pytest

from compliance.models import ComplianceRules
from flows.flow_document import DocumentInvalid, document_export, document_import
from flows.models import CancelSession

pytestmark = pytest.mark.django_db

RULES = {"default": {"cancel_button": "every_step", "offers": "any", "receipt": True},
         "regions": {"US-MN": {"offers": "none"}, "US": {"offers": "one"}, "DE": {"cancel_button": "every_step"}}}


def with_rules(demo_app, rules) -> dict:  # noqa: ANN001
    document = document_export(app=demo_app)
    document["compliance"] = rules
    return document


def test_an_import_sets_the_rules_and_an_export_gives_them_back(demo_app):
    document_import(document=with_rules(demo_app, RULES))
    assert ComplianceRules.objects.get(app=demo_app).rules == RULES
    assert document_export(app=demo_app)["compliance"] == RULES


def test_an_invalid_section_is_refused_with_its_path_and_changes_nothing(demo_app):
    document_import(document=with_rules(demo_app, RULES))
    document = with_rules(demo_app, {"regions": {"US-MN": {"offers": "never"}}})
    document["app"]["name"] = "Renamed"
    with pytest.raises(DocumentInvalid) as refused:
        document_import(document=document)
    assert refused.value.problems == ["compliance.regions.US-MN.offers: must be one of any, one, none"]
    assert ComplianceRules.objects.get(app=demo_app).rules == RULES
    demo_app.refresh_from_db()
    assert demo_app.name != "Renamed"


def test_a_document_without_the_section_leaves_the_rules_alone(demo_app):
    document_import(document=with_rules(demo_app, RULES))
    document = document_export(app=demo_app)
    del document["compliance"]
    document_import(document=document)
    assert ComplianceRules.objects.get(app=demo_app).rules == RULES


@pytest.mark.parametrize(("account", "expected"), [
    ({"region": "US-MN", "country": "US"}, {"region": "US-MN", "offers": "none"}),
    ({"region": "us-ca"}, {"region": "US-CA", "offers": "one"}),  # the country's rules, from the region
    ({"country": "DE"}, {"region": "DE", "offers": "any"}),
    ({}, {"region": "", "offers": "any"}),
])
def test_a_session_records_the_rules_of_its_region_once(client, demo_app, snippet_data, account, expected):
    document_import(document=with_rules(demo_app, RULES))
    data = snippet_data()
    data["account"].update(account)
    assert client.post("/precancel", json.dumps(data), content_type="application/json").status_code == 200
    session = CancelSession.objects.get()
    assert session.compliance == {"cancel_button": "every_step", "receipt": True,
                                  "cancel_effective": "period_end", **expected}
    # Later changes never rewrite what a started session was shown.
    document_import(document=with_rules(demo_app, {"default": {"offers": "none", "receipt": False}}))
    session.refresh_from_db()
    assert session.compliance["receipt"] is True


def test_offers_none_hides_every_offer_from_the_session(client, demo_app, snippet_data):
    document_import(document=with_rules(demo_app, RULES))
    data = snippet_data()
    data["account"]["region"] = "US-MN"
    client.post("/precancel", json.dumps(data), content_type="application/json")
    session = CancelSession.objects.get()
    assert session.offer_codes == []
    html = client.post(f"/c/{session.token}", {"action": "continue", "reason": "too-expensive"}).content.decode()
    assert "data-bb-offer-card" not in html
    refused = client.post(f"/c/{session.token}", {"accept": "discount-30", "reason": "too-expensive"})
    assert refused.status_code == 400


def test_offers_one_shows_at_most_one_offer(client, demo_app, snippet_data):
    document_import(document=with_rules(demo_app, RULES))
    data = snippet_data()
    data["account"]["country"] = "US"
    client.post("/precancel", json.dumps(data), content_type="application/json")
    session = CancelSession.objects.get()
    for reason in ("too-expensive", "not-using", "missing-feature", "switching", "other"):
        html = client.post(f"/c/{session.token}", {"action": "continue", "reason": reason}).content.decode()
        assert html.count("data-bb-offer-card") <= 1, reason
