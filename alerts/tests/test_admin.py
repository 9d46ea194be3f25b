"""Support staff set up rules, preview and send test alerts, and follow and re-send alerts in the admin."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from alerts import services
from alerts.models import AlertDelivery, AlertRule

pytestmark = pytest.mark.django_db

Status = AlertDelivery.Status


def test_staff_add_a_rule_with_recipients_one_per_line(admin_client, demo_app):
    response = admin_client.post(reverse("admin:alerts_alertrule_add"), {
        "app": demo_app.pk, "events": ["session.canceled", "offer.email_requested"],
        "recipients": "help@acme.zendesk.com\nops@example.com", "slack_webhook_url": "", "live_only": "on"})

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.events, rule.recipients, rule.live_only) == (
        ["session.canceled", "offer.email_requested"], ["help@acme.zendesk.com", "ops@example.com"], True)


def test_a_rule_with_a_bad_address_or_a_private_slack_url_is_refused(admin_client, demo_app, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    response = admin_client.post(reverse("admin:alerts_alertrule_add"), {
        "app": demo_app.pk, "events": ["session.canceled"], "recipients": "help at desk",
        "slack_webhook_url": "http://169.254.169.254/latest"})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["recipients"][0] == "help at desk is not an email address."
    assert "169.254.169.254 is a private, loopback" in errors["slack_webhook_url"][0]
    assert not AlertRule.objects.exists()


def test_the_test_page_shows_exactly_what_each_destination_receives(admin_client, make_rule, slack):
    rule = make_rule(events=["session.canceled"], recipients=["help@desk.example.com"], slack_webhook_url=slack.url)

    response = admin_client.get(reverse("admin:alerts_alertrule_test", args=[rule.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<strong data-bb-subject>[Test] Canceled: jane@example.com (pro, monthly, 49)</strong>' in page
    assert "<td>help@desk.example.com</td>" in page and "<td>jane@example.com</td>" in page  # To, Reply-To
    assert 'sandbox srcdoc="' in page and "Open the session in the admin" in html.unescape(page)
    assert "Reason: It’s too expensive (too-expensive)" in page  # the plain-text part
    assert "&quot;type&quot;: &quot;header&quot;" in page  # the Slack JSON
    card = page.split("data-bb-slack-card", 1)[1].split("</div>\n", 1)[0]
    assert "*Customer*\njane@example.com" in card and "It’s too expensive" in card
    assert 'value="Send test alert"' in page


def test_send_test_alert_delivers_what_the_preview_showed(admin_client, make_rule, smtp):
    rule = make_rule(events=["offer.email_requested"])
    preview = admin_client.get(reverse("admin:alerts_alertrule_test", args=[rule.pk])).content.decode()

    response = admin_client.post(reverse("admin:alerts_alertrule_test", args=[rule.pk]),
                                 {"event": "offer.email_requested"})

    assert response.status_code == 302
    [delivery] = AlertDelivery.objects.all()
    assert (delivery.is_test, delivery.rule, delivery.event) == (True, rule, None)
    services.delivery_send(delivery_id=delivery.pk)
    [message] = smtp.messages()
    assert message["Subject"] == "[Test] Wants to talk to support: jane@example.com (pro, monthly, 49)"
    assert f"<strong data-bb-subject>{message['Subject']}</strong>" in preview
    text = message.get_body(("plain",)).get_content()
    assert "They asked: Talk to us about a better plan" in text
    assert html.escape(text.splitlines()[0]) in preview


def test_for_an_app_connected_to_billing_the_test_alert_says_what_billing_would_do(admin_client, demo_app, make_rule,
                                                                                   smtp):
    from billing import services as billing_services

    billing_services.connection_save(app=demo_app, provider="recurly", api_key="recurly_test_alerts", dry_run=True)
    rule = make_rule(events=["session.canceled"])
    preview = html.unescape(admin_client.get(reverse("admin:alerts_alertrule_test", args=[rule.pk])).content.decode())
    line = "Cancel the subscription in Recurly: dry run, nothing was sent"
    assert line in preview

    admin_client.post(reverse("admin:alerts_alertrule_test", args=[rule.pk]), {"event": "session.canceled"})
    services.delivery_send(delivery_id=AlertDelivery.objects.get().pk)
    [message] = smtp.messages()
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert f"BILLING\n{line}\nSubscription: sub_test" in text


def test_a_failed_test_alert_is_tried_once_and_shows_the_servers_answer(admin_client, make_rule, smtp):
    smtp.answers = ["421 4.3.2 Try again later"]
    rule = make_rule()
    admin_client.post(reverse("admin:alerts_alertrule_test", args=[rule.pk]), {"event": "session.canceled"})
    delivery = AlertDelivery.objects.get()

    result = services.delivery_send(delivery_id=delivery.pk)

    assert (result.outcome, result.retry_in) == (Status.FAILED, None)
    page = admin_client.get(reverse("admin:alerts_alertrule_test", args=[rule.pk])).content.decode()
    assert "421 4.3.2 Try again later" in page


def test_an_unknown_event_type_is_a_400(admin_client, make_rule):
    rule = make_rule()

    response = admin_client.post(reverse("admin:alerts_alertrule_test", args=[rule.pk]), {"event": "nope"})

    assert response.status_code == 400
    assert not AlertDelivery.objects.exists()


def test_the_alert_log_lists_status_attempts_and_last_error(admin_client, make_rule, alert_for, smtp):
    smtp.answers = ["550 5.1.1 No such mailbox"]
    make_rule()
    delivery = alert_for()
    services.delivery_send(delivery_id=delivery.pk)

    page = admin_client.get(reverse("admin:alerts_alertdelivery_changelist")).content.decode()

    assert "session.canceled" in page and "help@desk.example.com" in page
    assert ">Failed</span>" in page
    assert "550 5.1.1 No such mailbox" in page
    assert delivery.event.session.public_id in page


def test_the_alert_page_shows_the_message_and_re_sends_it(admin_client, make_rule, alert_for, smtp):
    smtp.answers = ["550 5.1.1 No such mailbox"]
    make_rule()
    delivery = alert_for()
    services.delivery_send(delivery_id=delivery.pk)
    page = admin_client.get(reverse("admin:alerts_alertdelivery_change", args=[delivery.pk])).content.decode()
    assert "<strong data-bb-subject>[Test] Canceled: jane@example.com (pro, 49)</strong>" in page

    response = admin_client.post(reverse("admin:alerts_alertdelivery_resend", args=[delivery.pk]))

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_error) == (Status.PENDING, 0, "")
    assert services.delivery_send(delivery_id=delivery.pk).outcome == Status.SUCCEEDED


def test_the_re_send_action_queues_every_chosen_alert(admin_client, make_rule, decide, smtp):
    smtp.answers = ["554 5.7.1 Relay denied"] * 2
    make_rule()
    for _ in range(2):
        decide("cancel")
    for delivery in AlertDelivery.objects.all():
        services.delivery_send(delivery_id=delivery.pk)

    admin_client.post(reverse("admin:alerts_alertdelivery_changelist"), {
        "action": "resend", "_selected_action": list(AlertDelivery.objects.values_list("pk", flat=True))})

    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {Status.PENDING}


def test_a_customers_markup_is_shown_as_text_on_the_alert_page(admin_client, make_rule, alert_for):
    make_rule()
    delivery = alert_for(feedback='<script>alert("owned")</script>', account={"internal_id": "a", "plan": "<b>pro</b>"})

    page = admin_client.get(reverse("admin:alerts_alertdelivery_change", args=[delivery.pk])).content.decode()

    assert "<script>alert" not in page and "<b>pro</b>" not in page
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page  # the plain-text part, as text
    srcdoc = page.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert html.unescape(srcdoc).startswith("<!doctype html>")  # the whole HTML part stays inside srcdoc
    assert "&lt;b&gt;pro&lt;/b&gt;" in html.unescape(srcdoc)  # and is escaped within it


def test_the_sessions_timeline_shows_each_alert_and_what_the_server_said(admin_client, make_rule, alert_for, smtp):
    smtp.answers = ["550 5.1.1 No such mailbox"]
    make_rule()
    delivery = alert_for()
    services.delivery_send(delivery_id=delivery.pk)

    session = delivery.event.session
    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    timeline = page[page.index('<table class="bb-timeline">'):]
    timeline = timeline[:timeline.index("</table>")]
    assert "(session.canceled) to help@desk.example.com" in timeline
    assert "550 5.1.1 No such mailbox" in timeline
    assert reverse("admin:alerts_alertdelivery_change", args=[delivery.pk]) in timeline
