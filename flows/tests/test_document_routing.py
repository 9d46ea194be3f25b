"""Audiences, experiments and offer rules travel in the flow document, validated by path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from flows.models import App, Audience, Variant
from offers.models import Offer

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo-flow.json"


def export(app_id: str) -> dict:
    out = io.StringIO()
    call_command("flow_export", app_id, stdout=out)
    return json.loads(out.getvalue())


def load(document: dict) -> str:
    out = io.StringIO()
    call_command("flow_import", "-", stdin=io.StringIO(json.dumps(document)), stdout=out)
    return out.getvalue()


@pytest.fixture
def experiment_document() -> dict:
    document = json.loads(FIXTURE.read_text("utf-8"))
    document["app"]["offer_blocklist"] = ["acct_abuser"]
    flow = document["flows"][0]
    flow["variants"] = [
        {"code": "control", "name": "No offers", "weight": 5, "is_control": True, "offers": [], "title": "",
         "intro": "", "is_active": True},
        {"code": "discount", "name": "Discount only", "weight": 95, "is_control": False,
         "offers": ["discount-30"], "title": "Stay for less", "intro": "", "is_active": True},
    ]
    flow["offers"][0].update(cap_days=180, hide_during_trial=True, min_monthly_value=20.5, audiences=["Teams"])
    document["routing"] = {"audiences": [
        {"name": "Teams", "position": 0, "rules": {"field": "custom.seats", "op": "gte", "value": 5},
         "flow": None, "is_active": True},
        {"name": "Yearly", "position": 1, "rules": {"all": [{"field": "account.plan_term", "op": "equals",
                                                             "value": "year"}]},
         "flow": "Default", "is_active": True},
    ]}
    return document


def test_an_experiment_with_a_control_round_trips_through_the_document(experiment_document):
    load(experiment_document)
    app = App.objects.get(app_id="demo")
    control = Variant.objects.get(code="control")
    assert (control.is_control, control.weight, control.flow.name) == (True, 5, "Default")
    assert Variant.objects.get(code="discount").offer_code_list == ["discount-30"]
    yearly = Audience.objects.get(name="Yearly")
    assert yearly.flow.name == "Default" and yearly.app == app
    offer = Offer.objects.get(code="discount-30")
    assert (offer.cap_days, offer.hide_during_trial, str(offer.min_monthly_value)) == (180, True, "20.50")
    assert [a.name for a in offer.audiences.all()] == ["Teams"]
    assert app.offer_blocklist == "acct_abuser"
    assert export("demo") == experiment_document
    # Importing it again changes nothing.
    assert "nothing changed" in load(experiment_document)
    assert export("demo") == experiment_document


def test_variants_and_audiences_left_out_are_retired_not_deleted(experiment_document):
    load(experiment_document)
    experiment_document["flows"][0]["variants"] = experiment_document["flows"][0]["variants"][1:]
    experiment_document["routing"]["audiences"] = experiment_document["routing"]["audiences"][:1]
    load(experiment_document)
    assert not Variant.objects.get(code="control").is_active
    assert not Audience.objects.get(name="Yearly").is_active


def _variant(document: dict, index: int) -> dict:
    return document["flows"][0]["variants"][index]


INVALID = [
    ("a second control", lambda d: _variant(d, 1).update(is_control=True, offers=[]),
     "flows[0].variants[1].is_control: a flow has one active control (also at flows[0].variants[0])"),
    ("a control with offers", lambda d: _variant(d, 0).update(offers=["pause-2"]),
     "flows[0].variants[0].offers: a control shows no offers; leave it out"),
    ("an offer of no such code", lambda d: _variant(d, 1)["offers"].append("refund"),
     'flows[0].variants[1].offers[1]: no offer with code "refund" in this flow'),
    ("a negative weight", lambda d: _variant(d, 1).update(weight=-1),
     "flows[0].variants[1].weight: Ensure this value is greater than or equal to 0."),
    ("a duplicate variant code", lambda d: _variant(d, 1).update(code="control", is_control=False),
     'flows[0].variants[1].code: duplicate code "control" (also at flows[0].variants[0])'),
    ("a rule with a bad operator", lambda d: d["routing"]["audiences"][1]["rules"]["all"][0].update(op="~"),
     "routing.audiences[1].rules.all[0].op: must be one of"),
    ("a rule that is a string", lambda d: d["routing"]["audiences"][0].update(rules="seats > 5"),
     "routing.audiences[0].rules: must be an object"),
    ("an audience of no such flow", lambda d: d["routing"]["audiences"][1].update(flow="Gone"),
     'routing.audiences[1].flow: no flow named "Gone" in this document'),
    ("an offer of no such audience", lambda d: d["flows"][0]["offers"][0].update(audiences=["VIP"]),
     'flows[0].offers[0].audiences[0]: no audience named "VIP" (list it under routing.audiences)'),
    ("a value floor as text", lambda d: d["flows"][0]["offers"][0].update(min_monthly_value="20"),
     "flows[0].offers[0].min_monthly_value: must be a number or null"),
    ("a cap of zero days", lambda d: d["flows"][0]["offers"][0].update(cap_days=0),
     "flows[0].offers[0].cap_days: Ensure this value is greater than or equal to 1."),
]


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_an_invalid_routing_document_is_refused_with_the_path_and_changes_nothing(experiment_document, change,
                                                                                   expected):
    change(experiment_document)
    with pytest.raises(CommandError) as caught:
        load(experiment_document)
    assert expected in str(caught.value)
    assert not App.objects.exists() and not Variant.objects.exists() and not Audience.objects.exists()
