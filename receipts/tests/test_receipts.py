"""Receipts go through Django's SMTP backend to a real SMTP server (aiosmtpd) on 127.0.0.1, which parses
them as the customer's mail server would."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from flows.models import App, CancelSession
from receipts import selectors, services
from receipts.models import Receipt

pytestmark = pytest.mark.django_db

Status = Receipt.Status


def text_of(message) -> str:  # noqa: ANN001
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html_of(message) -> str:  # noqa: ANN001
    return message.get_body(("html",)).get_content()


def test_a_cancel_receipt_is_sent_once_with_the_session_as_reference_and_its_message_id_recorded(
        smtp, demo_app, receipt_for):
    App.objects.filter(pk=demo_app.pk).update(support_email="help@acme.example.com")
    receipt = receipt_for(account={"internal_id": "acct_42", "plan": "pro"})
    session = receipt.session

    assert services.receipt_send(receipt_id=receipt.pk).outcome == Status.SUCCEEDED
    assert services.receipt_send(receipt_id=receipt.pk).outcome == "skipped"  # running it twice sends once

    [accepted] = smtp.accepted
    message = accepted.message
    assert accepted.rcpt_tos == ["jane@example.com"]
    assert session.public_id in message["Subject"]
    assert message["Reply-To"] == "help@acme.example.com"
    text = text_of(message)
    for expected in ["you canceled your", "Plan: pro", "Subscription: sub_1",
                     "It takes effect at the end of your current billing period.",
                     f"Reference: {session.public_id}", "help@acme.example.com", "https://cancel.example.com/r/"]:
        assert expected in text, expected
    receipt.refresh_from_db()
    assert receipt.status == Status.SUCCEEDED and receipt.attempt_count == 1
    assert message["Message-ID"] == receipt.message_id and receipt.message_id.endswith("@acme.example.com>")
    assert receipt.sent_at is not None and timezone.now() - receipt.sent_at < timedelta(minutes=1)
    assert receipt.effective_source == Receipt.Source.SETTINGS and receipt.effective_at is None
    assert receipt.way_back_until == receipt.event.created_at + timedelta(days=30)
    [row] = selectors.receipts_for_session(session)
    assert (row.kind, row.status, row.message_id, row.sent_at) == ("cancel", "succeeded", receipt.message_id,
                                                                    receipt.sent_at)


@pytest.mark.parametrize(("locale", "words"), [
    ("fr-FR", ["Bonjour", "Référence", "Garder mon abonnement"]),
    ("de", ["Referenz", "Abonnement behalten"]),
    ("es-MX", ["Hola", "Referencia", "Conservar mi suscripción"]),
])
def test_a_receipt_is_in_the_pages_language(smtp, receipt_for, locale, words):
    receipt = receipt_for(context={"locale": locale})
    services.receipt_send(receipt_id=receipt.pk)
    [accepted] = smtp.accepted
    html = html_of(accepted.message)
    for word in words:
        assert word in html, word


def test_an_applied_offer_gets_a_receipt_saying_what_changed(smtp, receipt_for):
    receipt = receipt_for("accept", offer_code="discount-30")
    assert receipt.kind == Receipt.Kind.OFFER

    services.receipt_send(receipt_id=receipt.pk)

    text = text_of(smtp.accepted[0].message)
    assert "30%" in text and "instead of canceling" in text and receipt.session.public_id in text
    assert "/r/" not in text  # no way back to offer: nothing was canceled


def test_a_request_to_talk_to_support_or_a_custom_link_gets_no_receipt(demo_app, decide):
    from offers.models import Offer

    talk = decide("accept", offer_code="talk-to-us", reason_code="missing-feature")
    Offer.objects.create(flow=demo_app.flows.get(), code="webinar", title="Join a webinar",
                         kind=Offer.Kind.CUSTOM_LINK, link_url="https://acme.example.com/webinar")
    link = decide("accept", offer_code="webinar")
    assert not Receipt.objects.filter(session__in=[talk.session, link.session]).exists()


def test_a_smtp_failure_is_retried_through_the_outbox_under_the_same_message_id(smtp, receipt_for):
    smtp.answers = ["451 4.7.1 Greylisted, come back later"]
    receipt = receipt_for()

    first = services.receipt_send(receipt_id=receipt.pk)

    receipt.refresh_from_db()
    assert receipt.status == Status.PENDING and "451 4.7.1" in receipt.last_error
    assert 2 <= first.retry_in <= 2.2  # a greylisting blip is retried within seconds, as alerts are
    assert services.receipt_send(receipt_id=receipt.pk).outcome == "skipped"  # not due yet
    message_id = receipt.message_id
    Receipt.objects.filter(pk=receipt.pk).update(next_attempt_at=timezone.now())

    assert services.receipt_send(receipt_id=receipt.pk).outcome == Status.SUCCEEDED

    [accepted] = smtp.accepted
    receipt.refresh_from_db()
    assert (receipt.attempt_count, receipt.message_id) == (2, message_id)
    assert accepted.message["Message-ID"] == message_id


def test_a_5xx_answer_fails_the_receipt_at_once(smtp, receipt_for):
    smtp.answers = ["550 5.1.1 <jane@example.com>: Recipient address rejected"]
    receipt = receipt_for()
    assert services.receipt_send(receipt_id=receipt.pk).outcome == Status.FAILED
    receipt.refresh_from_db()
    assert "550 5.1.1" in receipt.last_error and receipt.sent_at is None


def test_the_sweeper_wakes_a_receipt_the_broker_lost(settings, receipt_for, monkeypatch):
    settings.OUTBOX_PUBLISH_GRACE_SECONDS = 0.0
    receipt = receipt_for()
    woken: list = []
    monkeypatch.setattr(services.channel(), "wake", lambda pks: woken.extend(pks) or len(pks))
    services.receipts_sweep(now=timezone.now() + timedelta(seconds=5))
    assert woken == [receipt.pk]


def test_no_receipt_when_the_sessions_rules_turn_receipts_off(decide):
    decision = decide(compliance={"region": "US-CA", "receipt": False})
    assert not Receipt.objects.filter(session=decision.session).exists()


def test_rules_that_do_not_mention_receipts_leave_them_on(decide):
    decision = decide(compliance={"region": "DE", "cancel_button": "every_step"})
    assert Receipt.objects.filter(session=decision.session).count() == 1


def test_no_receipt_without_the_customers_email(decide):
    decision = decide(email="")
    assert not Receipt.objects.filter(session=decision.session).exists()


def test_an_app_can_turn_receipts_off(demo_app, decide):
    services.settings_update(app=demo_app, enabled=False)
    decision = decide()
    assert not Receipt.objects.filter(session=decision.session).exists()


def test_the_confirmation_page_promises_an_email_only_when_one_is_sent(client, decide):
    page_only = ("cancel_confirmation_url",)
    emailed = decide(without=page_only)
    silent = decide(without=page_only, compliance={"receipt": False})
    anonymous = decide(without=page_only, email="")

    promise = "You’ll receive a confirmation by email."
    assert promise in client.get(reverse("flows:done", args=[emailed.session.token])).content.decode()
    for decision in (silent, anonymous):
        page = client.get(reverse("flows:done", args=[decision.session.token])).content.decode()
        assert promise not in page and decision.session.public_id in page


def test_staff_resend_a_receipt_from_the_admin(admin_client, smtp, receipt_for):
    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    page = admin_client.get(reverse("admin:receipts_receipt_change", args=[receipt.pk])).content.decode()
    assert receipt.session.public_id in page and "Re-send" in page

    response = admin_client.post(reverse("admin:receipts_receipt_resend", args=[receipt.pk]))

    assert response.status_code == 302
    receipt.refresh_from_db()
    assert receipt.status == Status.PENDING and receipt.attempt_count == 0
    assert services.receipt_send(receipt_id=receipt.pk).outcome == Status.SUCCEEDED
    first, second = smtp.accepted
    assert first.message["Message-ID"] != second.message["Message-ID"]
    assert text_of(first.message) == text_of(second.message)  # what it states stays


def test_the_sessions_timeline_shows_the_receipt_and_its_message_id(admin_client, smtp, receipt_for):
    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    receipt.refresh_from_db()
    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[receipt.session_id])).content.decode()
    assert "Cancel receipt to the customer" in page


def test_customer_erase_removes_the_receipts_address_and_cancels_an_unsent_one(demo_app, receipt_for):
    receipt = receipt_for()
    call_command("customer_erase", "--app", demo_app.app_id, "--email", "jane@example.com", stdout=io.StringIO())
    receipt.refresh_from_db()
    assert receipt.recipient == "" and receipt.status == Status.FAILED
    assert services.receipt_send(receipt_id=receipt.pk).outcome == "skipped"
    assert CancelSession.objects.get(pk=receipt.session_id).email == ""


def test_a_receipt_writes_no_index_another_serves():
    # Before: the event's foreign key had an index of its own and its LIKE copy, which the unique
    # (event, kind) constraint's index already serves; every decision's receipt wrote all three.
    from django.db import connection

    from flows.tests.test_session_writes import _served_by_another

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's catalogue")

    assert _served_by_another(Receipt._meta.db_table) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [Receipt._meta.db_table])
        assert not [d for (d,) in cursor.fetchall() if "event_id" in d and "pattern_ops" in d]
