"""/precancel checks where the customer lives (account.country, account.region): the page's rules depend on
it, so a value naming no place is a clear 400 and nothing is created."""

from __future__ import annotations

import json

import pytest

from flows.models import CancelSession

pytestmark = pytest.mark.django_db


def precancel(client, data: dict):  # noqa: ANN001, ANN201
    return client.post("/precancel", data=json.dumps(data), content_type="application/json")


@pytest.mark.parametrize(("account", "message"), [
    ({"country": "XX"}, "account.country must be an ISO 3166-1 alpha-2 country code, such as US or DE"),
    ({"country": "USA"}, "account.country must be an ISO 3166-1 alpha-2 country code, such as US or DE"),
    ({"country": "ﬁ"}, "account.country must be an ISO 3166-1 alpha-2 country code, such as US or DE"),
    ({"country": 49}, "account.country must be a string"),
    ({"region": "CA"}, "account.region must be an ISO 3166-2 subdivision code, such as US-CA"),
    ({"region": "ZZ-CA"}, "account.region must be an ISO 3166-2 subdivision code, such as US-CA"),
    ({"region": "US-CALI"}, "account.region must be an ISO 3166-2 subdivision code, such as US-CA"),
    ({"region": "US-CA", "country": "DE"}, "account.region US-CA is not in account.country DE"),
])
def test_a_place_that_is_not_one_is_refused_and_nothing_is_created(client, demo_app, snippet_data, account, message):
    data = snippet_data()
    data["account"].update(account)
    response = precancel(client, data)
    assert response.status_code == 400
    assert response.json() == {"valid": False, "message": message}
    assert not CancelSession.objects.exists()


def test_places_are_kept_in_upper_case(client, demo_app, snippet_data):
    data = snippet_data()
    data["account"].update(country="us", region="us-mn")
    assert precancel(client, data).status_code == 200
    session = CancelSession.objects.get()
    assert (session.account["country"], session.account["region"]) == ("US", "US-MN")
    assert session.compliance["region"] == "US-MN"
    assert session.compliance["offers"] == "none"  # the demo's Minnesota preset


def test_null_places_are_absent(client, demo_app, snippet_data):
    data = snippet_data()
    data["account"].update(country=None, region=None)
    assert precancel(client, data).status_code == 200
    assert CancelSession.objects.get().compliance["region"] == ""
