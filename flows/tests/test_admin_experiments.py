"""Staff configure audiences and an experiment with a control in the admin."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import App, Audience, CancelSession, Variant
from flows.tests.test_admin import flow_url, form_data

pytestmark = pytest.mark.django_db


def test_an_experiment_with_a_control_is_configured_on_the_flow_page(admin_client: Client, demo_app: App,
                                                                     snippet_data) -> None:  # noqa: ANN001
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    data.update({
        "variants-TOTAL_FORMS": "2",
        "variants-0-code": "control", "variants-0-weight": "5", "variants-0-is_control": "on",
        "variants-0-is_active": "on",
        "variants-1-code": "discount", "variants-1-weight": "95", "variants-1-offer_codes": "discount-30",
        "variants-1-title": "Stay for less", "variants-1-is_active": "on",
    })
    response = admin_client.post(flow_url(flow), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert {(v.code, v.weight, v.is_control) for v in Variant.objects.all()} == {
        ("control", 5, True), ("discount", 95, False)}

    response = admin_client.post("/precancel", json.dumps(snippet_data()), content_type="application/json")
    assert response.status_code == 200
    assert CancelSession.objects.get().variant.code in {"control", "discount"}


def test_a_control_listing_offers_is_refused_on_the_flow_page(admin_client: Client, demo_app: App) -> None:
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    data.update({"variants-TOTAL_FORMS": "1", "variants-0-code": "control", "variants-0-weight": "5",
                 "variants-0-is_control": "on", "variants-0-is_active": "on",
                 "variants-0-offer_codes": "discount-30"})
    response = admin_client.post(flow_url(flow), data)
    assert response.status_code == 200
    assert "A control shows no offers" in response.content.decode()
    assert not Variant.objects.exists()


def test_an_audience_with_an_invalid_rule_is_refused_in_the_admin_with_its_path(admin_client: Client,
                                                                                 demo_app: App) -> None:
    url = reverse("admin:flows_audience_add")
    rules = {"all": [{"field": "account.plan", "op": "equals", "value": "pro"},
                     {"field": "plan", "op": "equals", "value": "pro"}]}
    response = admin_client.post(url, {"app": demo_app.pk, "name": "Pros", "position": "0",
                                       "rules": json.dumps(rules), "is_active": "on"})
    assert response.status_code == 200
    assert "rules.all[1].field: &#x27;plan&#x27; is not a snippet field" in response.content.decode()
    rules["all"].pop()
    response = admin_client.post(url, {"app": demo_app.pk, "name": "Pros", "position": "0",
                                       "rules": json.dumps(rules), "flow": demo_app.flows.get().pk,
                                       "is_active": "on"})
    assert response.status_code == 302
    assert Audience.objects.get().rules == rules
