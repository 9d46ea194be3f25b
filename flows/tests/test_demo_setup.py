"""`make run` runs `demo_setup` on every start: it creates the demo App when it is missing and leaves a
demo staff have edited alone; `demo_setup --reset` restores the demo document."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from alerts import services as alert_services
from alerts.models import AlertRule
from flows.flow_document import document_export
from flows.management.commands.demo_setup import DEMO_DOCUMENT
from flows.models import App, Flow
from offers.models import Offer

pytestmark = pytest.mark.django_db


def demo_setup(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_setup", *args, stdout=out)
    return out.getvalue()


def staff_edit_the_demo() -> None:
    app = App.objects.get(app_id="demo")
    app.allowed_origins = "https://app.acme.example"
    app.save()
    flow = Flow.objects.get(app=app)
    flow.title = "Before you go, Acme friend"
    flow.save()
    Offer.objects.create(flow=flow, code="annual-50", kind=Offer.Kind.DISCOUNT, title="50% off a year",
                         coupon="ANNUAL50", position=9)
    alert_services.rule_create(app=app, events=["session.canceled"], recipients=["help@acme.example"])


def test_a_second_demo_setup_keeps_what_staff_changed_in_the_demo():
    assert demo_setup().startswith("Created demo app 'demo'")
    staff_edit_the_demo()

    out = demo_setup()  # make run, started again

    assert "left as it is" in out and "--reset" in out
    app = App.objects.get(app_id="demo")
    assert app.allowed_origins == "https://app.acme.example"
    flow = Flow.objects.get(app=app)
    assert flow.title == "Before you go, Acme friend"
    assert Offer.objects.get(flow=flow, code="annual-50").is_active
    assert list(AlertRule.objects.filter(app=app).values_list("recipients", flat=True)) == [["help@acme.example"]]


def test_demo_setup_reset_restores_the_demo_document():
    demo_setup()
    staff_edit_the_demo()

    assert demo_setup("--reset").startswith("Restored demo app 'demo'")

    app = App.objects.get(app_id="demo")
    assert app.allowed_origins == "" and Flow.objects.get(app=app).title == ""
    assert not Offer.objects.filter(code="annual-50", is_active=True).exists()
    assert not AlertRule.objects.filter(app=app).exists()
    exported, demo = document_export(app=app), json.loads(DEMO_DOCUMENT.read_text("utf-8"))
    # The offer staff added stays in the table, inactive (imports deactivate what they no longer list).
    exported["flows"][0]["offers"] = [o for o in exported["flows"][0]["offers"] if o["code"] != "annual-50"]
    assert exported == demo
