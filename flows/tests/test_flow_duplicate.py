"""“Duplicate flow” in the admin: a full, inactive copy that customers never see until turned on."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import App, CancelSession, Flow
from offers.models import Offer

pytestmark = pytest.mark.django_db


def duplicate(admin_client: Client, *flows: Flow):  # noqa: ANN201
    return admin_client.post(reverse("admin:flows_flow_changelist"),
                             {"action": "duplicate", "_selected_action": [f.pk for f in flows]}, follow=True)


def test_duplicating_a_flow_copies_its_content_inactive(admin_client: Client, demo_app: App, snippet_data) -> None:  # noqa: ANN001
    original = demo_app.flows.get()
    response = duplicate(admin_client, original)
    assert "Default (copy)" in response.content.decode()

    copy = Flow.objects.get(name="Default (copy)")
    assert copy.app == demo_app and not copy.is_active and copy.title == original.title
    assert [(r.code, r.label) for r in copy.reasons.all()] == [(r.code, r.label) for r in original.reasons.all()]
    originals = {o.code: o for o in Offer.objects.filter(flow=original)}
    for offer in Offer.objects.filter(flow=copy):
        source = originals.pop(offer.code)
        assert offer.terms() == source.terms() and offer.pk != source.pk
        assert sorted(r.code for r in offer.reasons.all()) == sorted(r.code for r in source.reasons.all())
        assert all(r.flow_id == copy.pk for r in offer.reasons.all())
    assert originals == {}
    assert original.reasons.count() == copy.reasons.count()  # the original is untouched

    # Inactive: customers still get the original.
    Client().post("/precancel", json.dumps(snippet_data()), content_type="application/json")
    assert CancelSession.objects.get().flow == original


def test_a_second_copy_gets_its_own_name(admin_client: Client, demo_app: App) -> None:
    original = demo_app.flows.get()
    duplicate(admin_client, original)
    duplicate(admin_client, original)
    assert {"Default (copy)", "Default (copy 2)"} <= set(Flow.objects.values_list("name", flat=True))
