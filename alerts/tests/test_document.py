"""Alert rules travel in the flow document's `alerts` section (DESIGN §8), validated with the rest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import AlertDelivery, AlertRule
from flows.flow_document import document_export

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[2] / "flows" / "fixtures" / "demo-flow.json"
RULE = {"events": ["session.canceled"], "recipients": ["help@desk.example.com"], "slack_webhook_url": "",
        "live_only": False}


def import_document(document: dict) -> str:
    out = io.StringIO()
    call_command("flow_import", "-", stdin=io.StringIO(json.dumps(document)), stdout=out)
    return out.getvalue()


def demo(alerts: list) -> dict:
    document = json.loads(FIXTURE.read_text("utf-8"))
    document["alerts"] = alerts
    return document


def test_rules_round_trip_through_import_and_export(demo_app, slack):
    rules = [RULE, {"events": ["offer.email_requested", "billing.action_failed"], "recipients": [],
                    "slack_webhook_url": slack.url, "live_only": True}]

    output = import_document(demo(rules))

    assert "alert rules: 2 created" in output
    # The Slack URL is a secret: stored, never exported.
    assert document_export(app=demo_app)["alerts"] == [
        {name: value for name, value in rule.items() if name != "slack_webhook_url"} for rule in rules]
    assert list(AlertRule.objects.values_list("events", "live_only", "slack_webhook_url")) == [
        (["session.canceled"], False, ""), (["offer.email_requested", "billing.action_failed"], True, slack.url)]
    again = import_document(demo(rules))
    assert "alert rules" not in again and "nothing changed" in again


def test_an_import_updates_rules_in_place_and_deletes_the_ones_it_no_longer_lists(demo_app, make_rule,
                                                                                  decide):
    first = make_rule(recipients=["old@example.com"])
    make_rule(events=["offer.accepted"])
    decide("cancel")  # a past alert of the first rule

    output = import_document(demo([RULE]))

    assert "alert rules: 1 updated, 1 deleted" in output
    assert list(AlertRule.objects.all()) == [first]
    first.refresh_from_db()
    assert first.recipients == ["help@desk.example.com"]
    assert AlertDelivery.objects.get().recipients == ["old@example.com"]  # the past alert keeps its own


def test_fields_left_out_take_their_defaults(demo_app):
    import_document(demo([{"events": ["session.canceled"], "recipients": ["help@desk.example.com"]}]))

    rule = AlertRule.objects.get()
    assert (rule.slack_webhook_url, rule.live_only) == ("", False)


def test_an_empty_list_removes_every_rule_and_a_missing_section_keeps_them(demo_app, make_rule):
    make_rule()
    document = demo([])
    del document["alerts"]
    import_document(document)
    assert AlertRule.objects.count() == 1

    import_document(demo([]))
    assert AlertRule.objects.count() == 0


@pytest.mark.parametrize(("alerts", "problem"), [
    ({"events": []}, "alerts: must be a list"),
    ([["session.canceled"]], "alerts[0]: must be an object"),
    ([{"recipients": ["a@example.com"]}], "alerts[0].events: required"),
    ([{**RULE, "events": ["session.cancelled"]}], "alerts[0].events: Unknown event types: session.cancelled"),
    ([{**RULE, "events": []}], "alerts[0].events: Choose at least one event type."),
    ([{**RULE, "recipients": "help@desk.example.com"}], "alerts[0].recipients: must be a list of strings"),
    ([{**RULE, "recipients": ["not an address"]}], "alerts[0].recipients: not an address is not an email address."),
    ([{**RULE, "recipients": []}], "alerts[0].recipients: Give at least one recipient or a Slack webhook URL."),
    ([{**RULE, "slack_webhook_url": "ftp://hooks.slack.com/x"}],
     "alerts[0].slack_webhook_url: Use the https:// URL Slack gives an incoming webhook."),
    ([{**RULE, "live_only": "yes"}], "alerts[0].live_only: must be true or false"),
    ([{**RULE, "name": "ops"}], "alerts[0].name: unknown field"),
])
def test_an_invalid_section_is_refused_by_path_and_changes_nothing(demo_app, make_rule, alerts, problem):
    make_rule(recipients=["kept@example.com"])

    with pytest.raises(CommandError) as refused:
        import_document(demo(alerts))

    assert f"  {problem}" in str(refused.value).splitlines()
    assert list(AlertRule.objects.values_list("recipients", flat=True)) == [["kept@example.com"]]


def test_a_slack_url_on_a_private_network_is_refused(demo_app, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    with pytest.raises(CommandError) as refused:
        import_document(demo([{**RULE, "slack_webhook_url": "http://127.0.0.1:9/services/x"}]))

    assert "alerts[0].slack_webhook_url: 127.0.0.1 is a private, loopback" in str(refused.value)
