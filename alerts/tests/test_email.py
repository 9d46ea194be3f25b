"""Alert emails go through Django's SMTP backend to a real SMTP server (aiosmtpd) on 127.0.0.1, which
parses them as a help desk would."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from alerts import rendering, services
from alerts.models import AlertDelivery
from alerts.testing import SmtpServer, free_port

pytestmark = pytest.mark.django_db

Status = AlertDelivery.Status
ACCOUNT = {"internal_id": "acct_42", "billing_id": "cus_9", "company_name": "Acme & Sons", "plan": "pro",
           "plan_term": "monthly", "value": 49}


def parts(message) -> tuple[str, str]:  # noqa: ANN001
    """The plain and HTML parts, with the wire's CRLF line ends read as newlines."""
    return tuple(message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def test_a_cancel_reaches_the_help_desk_with_every_field(smtp, live_app, make_rule, alert_for):
    make_rule(recipients=["help@desk.example.com", "ops@example.com"])
    delivery = alert_for(account=ACCOUNT, custom={"seats": 3, "team": {"name": "Blue"}, "beta": True},
                         context={"locale": "en-GB", "url": "https://app.example.com/billing"},
                         feedback="Too pricey for us")

    result = services.delivery_send(delivery_id=delivery.pk)

    assert result.outcome == Status.SUCCEEDED
    [accepted] = smtp.accepted
    message = accepted.message
    assert message["Subject"] == "Canceled: jane@example.com (pro, monthly, 49)"
    assert message["From"] == "Cancel flow <alerts@cancel.example.com>"
    assert message["To"] == "help@desk.example.com, ops@example.com"
    assert message["Reply-To"] == "jane@example.com"
    assert message["X-Cancel-Flow-Event"] == "session.canceled"
    assert sorted(accepted.rcpt_tos) == ["help@desk.example.com", "ops@example.com"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    session = delivery.event.session
    admin_url = f"https://cancel.example.com/admin/flows/cancelsession/{session.pk}/change/"
    for expected in ["Canceled: jane@example.com (pro, monthly, 49)", "Reason: It’s too expensive (too-expensive)",
                     "Feedback: Too pricey for us", "Subscription: sub_1", "internal_id: acct_42",
                     "billing_id: cus_9", "company_name: Acme & Sons", "plan_term: monthly", "value: 49",
                     "seats: 3", "team.name: Blue", "beta: yes", "locale: en-GB",
                     "url: https://app.example.com/billing", f"Session in the admin: {admin_url}",
                     f"Session: {session.public_id}", f"Event: {delivery.event_id}"]:
        assert expected in text, expected
    for expected in ["Acme &amp; Sons", "too-expensive", "Too pricey for us", f'href="{admin_url}"', "team.name",
                     session.public_id]:
        assert expected in html, expected
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (Status.SUCCEEDED, 1)
    assert delivery.last_answer == f"accepted by 127.0.0.1:{smtp.port}"
    assert delivery.sent_at is not None


def test_snippet_markup_is_escaped_in_the_html_part_and_cannot_inject_headers(smtp, live_app, make_rule,
                                                                               alert_for):
    make_rule()
    delivery = alert_for(feedback='<script>alert("x")</script> <b>bold</b>',
                         account={**ACCOUNT, "plan": "pro\r\nBcc: victim@example.com",
                                  "company_name": "<img src=x onerror=alert(1)>"})

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "Bcc: victim@example.com" in message["Subject"]
    text, html = parts(message)
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<script>alert("x")</script> <b>bold</b>' in text  # the plain part says exactly what was typed


def test_smtp_answering_421_twice_then_accepting_delivers_exactly_once(smtp, live_app, make_rule, alert_for,
                                                                       settings):
    settings.ALERT_RETRY_SCALE = 0.0001  # 30 s → 3 ms
    smtp.answers = ["421 4.3.2 Service not available, try again later"] * 2
    make_rule()
    delivery = alert_for()

    outcomes = []
    for _ in range(5):
        result = services.delivery_send(delivery_id=delivery.pk)
        outcomes.append(result.outcome)
        if result.retry_in is not None:
            AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    assert outcomes == [Status.PENDING, Status.PENDING, Status.SUCCEEDED, "skipped", "skipped"]
    assert len(smtp.accepted) == 1 and len(smtp.refused) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_error) == (Status.SUCCEEDED, 3, "")


def test_a_4xx_reply_schedules_a_retry_with_backoff(smtp, live_app, make_rule, alert_for):
    smtp.answers = ["451 4.7.1 Greylisted, come back later"]
    make_rule()
    delivery = alert_for()

    before = timezone.now()
    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert "451 4.7.1 Greylisted, come back later" in delivery.last_error
    assert 30 <= result.retry_in <= 33  # the first step, with up to 10% jitter
    assert delivery.next_attempt_at >= before + timedelta(seconds=30)
    assert services.delivery_send(delivery_id=delivery.pk).outcome == "skipped"  # not due yet


def test_a_5xx_reply_fails_at_once_with_the_servers_answer_recorded(smtp, live_app, make_rule, alert_for):
    smtp.answers = ["550 5.1.1 <help@desk.example.com>: Recipient address rejected"]
    make_rule()
    delivery = alert_for()

    result = services.delivery_send(delivery_id=delivery.pk)

    assert (result.outcome, result.retry_in) == (Status.FAILED, None)
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and delivery.attempt_count == 1
    assert "550 5.1.1 <help@desk.example.com>: Recipient address rejected" in delivery.last_error
    assert services.delivery_send(delivery_id=delivery.pk).outcome == "skipped"
    assert smtp.accepted == []


def test_a_mail_server_that_refuses_connections_is_retried(settings, live_app, make_rule, alert_for):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    make_rule()
    delivery = alert_for()

    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert result.retry_in is not None and delivery.status == Status.PENDING
    assert delivery.last_error == f"nothing accepts connections at 127.0.0.1:{settings.EMAIL_PORT}"


def test_a_mail_server_that_does_not_answer_in_time_is_retried(settings, live_app, make_rule, alert_for):
    with SmtpServer(hold=True) as slow:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = slow.host, slow.port, 0.5
        make_rule()
        delivery = alert_for()

        result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert result.retry_in is not None and delivery.status == Status.PENDING
    assert "did not answer within 0.5 s" in delivery.last_error
    assert slow.accepted == []


def test_running_the_send_twice_sends_once(smtp, live_app, make_rule, alert_for):
    make_rule()
    delivery = alert_for()

    services.delivery_send(delivery_id=delivery.pk)
    services.delivery_send(delivery_id=delivery.pk)

    assert len(smtp.accepted) == 1


def test_live_only_rules_skip_test_sessions(demo_app, make_rule, decide):
    everything = make_rule(recipients=["all@example.com"])
    live_only = make_rule(recipients=["live@example.com"], live_only=True)

    test_session = decide("cancel").session
    assert [d.rule for d in AlertDelivery.objects.filter(event__session=test_session)] == [everything]

    demo_app.mode = demo_app.Mode.LIVE
    demo_app.save(update_fields=["mode"])
    live_session = decide("cancel").session
    assert {d.rule for d in AlertDelivery.objects.filter(event__session=live_session)} == {everything, live_only}


def test_rules_only_hear_the_events_they_name(make_rule, decide):
    make_rule(events=["offer.accepted"])

    decide("cancel")

    assert not AlertDelivery.objects.exists()


def test_a_test_mode_session_is_marked_in_the_subject(smtp, make_rule, alert_for):
    make_rule()
    services.delivery_send(delivery_id=alert_for().pk)

    [message] = smtp.messages()
    assert message["Subject"] == "[Test] Canceled: jane@example.com (pro, 49)"
    assert "TEST: this alert comes from a test-mode session" in parts(message)[0]


def test_a_support_request_says_what_was_asked_and_by_when(smtp, live_app, make_rule, alert_for):
    make_rule(events=["offer.email_requested"])
    delivery = alert_for(decision="accept", reason_code="missing-feature", offer_code="talk-to-us",
                         feedback="We need SSO before renewing")

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    assert message["Subject"] == "Wants to talk to support: jane@example.com (pro, 49)"
    text, html = parts(message)
    due = rendering.answer_by(delivery.occurred_at, 1)
    assert "They asked: Talk to our team" in text
    assert "In their words: We need SSO before renewing" in text
    assert f"They expect an answer by {due:%A} {due.day} {due:%B %Y, %H:%M} UTC (within 1 business day)." in text
    assert f"{delivery.occurred_at:%H:%M} UTC" in text  # the team's time zone, UTC unless TIME_ZONE says
    assert "Reply to: jane@example.com" in text
    assert "What the customer asked for" in html


def test_the_promised_response_time_comes_from_the_apps_settings(live_app, make_rule, alert_for):
    services.settings_update(app=live_app, response_business_days=3)
    make_rule(events=["offer.email_requested"])
    delivery = alert_for(decision="accept", reason_code="other", offer_code="talk-to-us")

    _slug, message = services.message_of(delivery)

    assert "(within 3 business days)" in message.text


@pytest.mark.parametrize(("start", "days", "due"), [
    ("2026-11-30 10:00", 1, "2026-12-01 10:00"),  # Monday → Tuesday
    ("2026-12-04 16:30", 1, "2026-12-07 16:30"),  # Friday → Monday
    ("2026-12-05 11:00", 1, "2026-12-08 09:00"),  # Saturday counts from Monday morning
    ("2026-12-03 08:00", 0, "2026-12-03 08:00"),  # the same business day
    ("2026-12-03 08:00", 5, "2026-12-10 08:00"),  # a week of business days
])
def test_answer_by_counts_business_days(start, days, due):
    parse = lambda value: datetime.strptime(value, "%Y-%m-%d %H:%M")  # noqa: E731
    assert rendering.answer_by(parse(start), days) == parse(due)


def test_business_days_are_the_teams(settings):
    from datetime import UTC
    from zoneinfo import ZoneInfo

    settings.TIME_ZONE = "America/Los_Angeles"
    friday_evening = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # Saturday in UTC, Friday 19:00 in California
    due = rendering.answer_by(friday_evening, 1)
    assert due == datetime(2026, 12, 7, 19, 0, tzinfo=ZoneInfo("America/Los_Angeles"))  # Monday evening there
    assert f"{due:%Z}" == "PST"


def test_a_billing_outcome_is_shown_when_the_event_carries_one(demo_app):
    data = rendering.sample_data(app=demo_app, event_type="billing.action_failed")

    _slug, message = rendering.message_for(app=demo_app, kind="team_email", event_type="billing.action_failed",
                                           data=data, recipients=["help@desk.example.com"])

    assert message.subject == "[Test] Billing action failed: jane@example.com (pro, monthly, 49)"
    assert ("BILLING\nCancel the subscription in Stripe: failed\nError: No such subscription: sub_test\n"
            "Subscription: sub_test") in message.text
    assert "No such subscription: sub_test" in message.html


def test_a_cancel_alert_says_what_billing_is_doing_so_nobody_does_it_by_hand(live_app, make_rule, alert_for,
                                                                          settings):
    from billing import services as billing_services
    from billing.models import BillingAction

    billing_services.connection_save(app=live_app, provider="stripe", api_key="sk_live_alerts")
    make_rule()
    delivery = alert_for()
    action = BillingAction.objects.get(session=delivery.event.session)

    _slug, message = services.message_of(delivery)  # the alert goes out before the worker has run it
    assert "BILLING\nCancel the subscription in Stripe: queued, carried out automatically\nSubscription: sub_1" \
        in message.text
    assert "queued, carried out automatically" in message.html

    BillingAction.objects.filter(pk=action.pk).update(status=BillingAction.Status.SUCCEEDED)
    _slug, message = services.message_of(delivery)
    assert "Cancel the subscription in Stripe: done automatically" in message.text
    slack_delivery = AlertDelivery(app=live_app, event=delivery.event, kind=AlertDelivery.Kind.SLACK,
                                   event_type=delivery.event_type, data=delivery.data,
                                   occurred_at=delivery.occurred_at, slack_webhook_url="https://hooks.slack.com/x")
    _slug, slack_message = services.message_of(slack_delivery)
    assert "Cancel the subscription in Stripe: done automatically" in json.dumps(slack_message.chat)

    # A session billing does nothing about shows no such section; nor does one whose report fails, and
    # the alert still goes out.
    BillingAction.objects.all().delete()
    assert "BILLING" not in services.message_of(delivery)[1].text
    settings.BRIGHTBACK_EVENT_BILLING = ["alerts.tests.test_email.broken_billing_report"]
    assert "BILLING" not in services.message_of(delivery)[1].text


def broken_billing_report(event: object) -> dict:
    raise RuntimeError("the billing channel is broken")


def test_a_resend_starts_a_failed_alert_over(smtp, live_app, make_rule, alert_for):
    smtp.answers = ["554 5.7.1 Relay access denied"]
    make_rule()
    delivery = alert_for()
    services.delivery_send(delivery_id=delivery.pk)

    assert services.delivery_resend(delivery=delivery)
    result = services.delivery_send(delivery_id=delivery.pk)

    assert result.outcome == Status.SUCCEEDED and len(smtp.accepted) == 1
    delivery.refresh_from_db()
    assert (delivery.attempt_count, delivery.last_error) == (1, "")


class ProviderRefused(Exception):
    """What an HTTP-API email backend (django-anymail) raises: the provider's status code and answer."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the provider answered {status_code}")
        self.status_code = status_code


class ProviderBackend:
    """An email backend standing in for a provider's HTTP API (no provider can be reached from here)."""

    status_code = 422

    def __init__(self, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: list) -> int:
        raise ProviderRefused(self.status_code)


@pytest.mark.parametrize(("status_code", "retried"), [(422, False), (401, False), (429, True), (503, True)])
def test_an_api_backends_answer_decides_between_retrying_and_failing(settings, live_app, make_rule, alert_for,
                                                                     status_code, retried, monkeypatch):
    monkeypatch.setattr(ProviderBackend, "status_code", status_code)
    settings.EMAIL_BACKEND = f"{__name__}.ProviderBackend"
    make_rule()
    delivery = alert_for()

    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (result.retry_in is not None) is retried
    assert f"ProviderRefused: the provider answered {status_code}" in delivery.last_error


def test_an_accepted_offer_comes_with_its_terms(smtp, live_app, make_rule, alert_for):
    make_rule(events=["offer.accepted"])
    delivery = alert_for(decision="accept", offer_code="discount-30")

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    assert message["Subject"] == "Offer accepted: jane@example.com (pro, 49)"
    text, html = parts(message)
    assert ("OFFER\n30% off for the next 3 months (Discount, code discount-30)\n  coupon: SAVE30\n"
            "  discount (%): 30\n  for months: 3\n") in text
    assert "<li>coupon: SAVE30</li>" in html


def test_an_accepted_skip_says_how_many_renewals_are_free_and_what_billing_does(live_app, make_rule, alert_for):
    from billing import services as billing_services
    from offers.models import Offer

    billing_services.connection_save(app=live_app, provider="stripe", api_key="sk_live_alerts")
    Offer.objects.create(flow=live_app.flows.get(), code="skip-two", title="Your next two months on us",
                         kind=Offer.Kind.SKIP_RENEWAL, skip_renewals=2)
    make_rule(events=["offer.accepted"])
    delivery = alert_for(decision="accept", offer_code="skip-two")

    _slug, message = services.message_of(delivery)

    assert "OFFER\nYour next two months on us (Skip renewals, code skip-two)\n  renewals free: 2\n" in message.text
    assert ("BILLING\nSkip the next renewals (nothing charged) in Stripe: queued, carried out automatically"
            in message.text)
