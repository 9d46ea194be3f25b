"""Slack alerts: Block Kit built as data, posted to a local HTTP receiver standing in for Slack."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts import rendering, services
from alerts.models import AlertDelivery
from alerts.testing import free_port

pytestmark = pytest.mark.django_db

Status = AlertDelivery.Status
Kind = AlertDelivery.Kind


def mrkdwn_texts(payload: dict) -> list[str]:
    texts = []
    for block in payload["blocks"]:
        if "text" in block and block["text"]["type"] == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [field["text"] for field in block.get("fields", [])]
        texts += [element["text"] for element in block.get("elements", []) if element.get("type") == "mrkdwn"]
    return texts


def test_a_cancel_posts_block_kit_with_the_same_facts_as_the_email(slack, live_app, make_rule, alert_for):
    make_rule(slack_webhook_url=slack.url)
    delivery = alert_for(Kind.SLACK, account={"internal_id": "acct_42", "plan": "pro", "plan_term": "monthly",
                                              "value": 49}, custom={"seats": 3})

    result = services.delivery_send(delivery_id=delivery.pk)

    assert result.outcome == Status.SUCCEEDED
    [posted] = slack.snapshot()
    assert posted.headers["content-type"] == "application/json; charset=utf-8"
    payload = posted.payload
    assert payload["text"] == "Canceled: jane@example.com (pro, monthly, 49)"
    header, section, *rest = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "emoji": False,
                                                 "text": "Canceled: jane@example.com (pro, monthly, 49)"}}
    assert [f["text"] for f in section["fields"]] == [
        "*Customer*\njane@example.com", "*Plan*\npro, monthly, 49", "*Reason*\nIt’s too expensive (too-expensive)",
        "*Subscription*\nsub_1"]
    texts = mrkdwn_texts(payload)
    assert "*Feedback*\nToo pricey for us" in texts
    assert "*Account and custom fields*\ninternal_id: acct_42\nplan: pro\nplan_term: monthly\nvalue: 49\n" \
           "custom.seats: 3" in texts
    button = payload["blocks"][-1]["elements"][0]
    assert button["url"] == f"https://cancel.example.com/admin/flows/cancelsession/{delivery.event.session_id}/change/"
    delivery.refresh_from_db()
    assert delivery.last_answer == "HTTP 200 ok"


def test_snippet_fields_cannot_break_the_blocks_or_ping_a_channel(demo_app):
    data = rendering.sample_data(app=demo_app, event_type="session.canceled")
    data["feedback"] = "<!channel> see <https://evil.example|your invoice> & pay" + "x" * 10_000
    data["account"]["company_name"] = "*bold* <@U123>"

    _slug, message = rendering.message_for(app=demo_app, kind="slack", event_type="session.canceled", data=data,
                                           slack_webhook_url="https://hooks.slack.com/services/T/B/X")

    payload = json.loads(json.dumps(message.chat))
    texts = mrkdwn_texts(payload)
    feedback = next(text for text in texts if text.startswith("*Feedback*"))
    assert feedback.startswith("*Feedback*\n&lt;!channel&gt; see &lt;https://evil.example|your invoice&gt; &amp; pay")
    assert len(feedback) <= 3000 and feedback.endswith("…")
    assert "company_name: *bold* &lt;@U123&gt;" in next(t for t in texts if t.startswith("*Account"))
    assert not any("<!channel>" in text or "<@U123>" in text for text in texts)
    assert all(len(field["text"]) <= 2000 for block in payload["blocks"] for field in block.get("fields", []))


def test_a_slack_429_honours_retry_after(slack, live_app, make_rule, alert_for):
    slack.answers = [(429, {"Retry-After": "120"}, b"rate_limited")]
    make_rule(slack_webhook_url=slack.url)
    delivery = alert_for(Kind.SLACK)

    before = timezone.now()
    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.last_error == "Slack answered HTTP 429: rate_limited"
    assert 120 <= result.retry_in <= 132
    assert delivery.next_attempt_at >= before + timedelta(seconds=120)
    AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.delivery_send(delivery_id=delivery.pk).outcome == Status.SUCCEEDED
    assert [p.answered for p in slack.snapshot()] == [429, 200]


def test_a_slack_5xx_is_retried_and_a_revoked_webhook_fails_at_once(slack, live_app, make_rule, alert_for):
    slack.answers = [(503, {}, b""), (404, {}, b"no_service")]
    make_rule(slack_webhook_url=slack.url)
    delivery = alert_for(Kind.SLACK)

    assert services.delivery_send(delivery_id=delivery.pk).retry_in is not None
    AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (result.outcome, result.retry_in) == (Status.FAILED, None)
    assert (delivery.attempt_count, delivery.last_error) == (2, "Slack answered HTTP 404: no_service")


def test_slack_that_cannot_be_reached_is_retried(live_app, make_rule, alert_for):
    make_rule(slack_webhook_url=f"http://127.0.0.1:{free_port()}/services/x")
    delivery = alert_for(Kind.SLACK)

    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert result.retry_in is not None
    assert delivery.last_error == "could not connect to the Slack webhook's host"


def test_a_slack_url_on_a_private_network_is_refused_when_saved_and_when_sent(slack, live_app, make_rule,
                                                                             alert_for, settings):
    make_rule(slack_webhook_url=slack.url)
    delivery = alert_for(Kind.SLACK)
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    with pytest.raises(ValidationError) as refused:
        make_rule(slack_webhook_url="http://10.0.0.7/hooks")
    result = services.delivery_send(delivery_id=delivery.pk)

    assert "10.0.0.7 is a private, loopback" in str(refused.value)
    delivery.refresh_from_db()
    assert (result.outcome, slack.snapshot()) == (Status.FAILED, [])
    assert delivery.last_error.startswith("refused: 127.0.0.1 is a private, loopback")


def test_a_rule_with_both_gets_one_row_per_destination(slack, make_rule, decide):
    make_rule(recipients=["help@desk.example.com"], slack_webhook_url=slack.url)

    decide("cancel")

    assert sorted(AlertDelivery.objects.values_list("kind", flat=True)) == [Kind.SLACK, Kind.TEAM_EMAIL]
