"""Optional customer messages: an acknowledgement after a contact-support offer and a cancellation
receipt, in the customer's language, sent through the same outbox rows as team alerts."""

from __future__ import annotations

import pytest

from alerts import rendering, services
from alerts.models import AlertDelivery

pytestmark = pytest.mark.django_db

Kind = AlertDelivery.Kind


@pytest.fixture(autouse=True)
def only_the_alerts_channel_emails_customers(settings) -> None:  # noqa: ANN001
    """These Apps rely on the alerts channel's own receipt: no other channel emails their customers."""
    settings.BRIGHTBACK_CUSTOMER_EMAILS = []


def plain(message) -> str:  # noqa: ANN001
    return message.get_body(("plain",)).get_content()


def subject(message) -> str:  # noqa: ANN001
    # Django folds a long encoded Subject onto a continuation line; Python's parser keeps the fold's space.
    return str(message["Subject"]).strip()


def test_nothing_goes_to_customers_unless_the_app_asks(decide):
    decide("cancel")
    decide("accept", reason_code="other", offer_code="talk-to-us")

    assert not AlertDelivery.objects.exists()


def test_a_contact_request_is_acknowledged_with_the_promised_date(smtp, demo_app, alert_for):
    services.settings_update(app=demo_app, customer_acknowledgement=True, response_business_days=2)
    delivery = alert_for(Kind.ACKNOWLEDGEMENT, decision="accept", reason_code="other", offer_code="talk-to-us")

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    due = rendering.answer_by(delivery.occurred_at, 2)
    assert message["To"] == "jane@example.com"
    assert message["Reply-To"] == "support@example.com"
    assert subject(message) == "Demo (Acme Analytics): we received your request"
    text = plain(message)
    assert "You asked: “Talk to our team”." in text
    assert f"Our team will answer you by email by {due:%A} {due.day} {due:%B %Y}." in text
    assert "reply to this email" in message.get_body(("html",)).get_content()


def test_the_acknowledgement_speaks_the_customers_language(smtp, demo_app, alert_for):
    services.settings_update(app=demo_app, customer_acknowledgement=True)
    delivery = alert_for(Kind.ACKNOWLEDGEMENT, decision="accept", reason_code="other", offer_code="talk-to-us",
                         context={"locale": "fr-FR"})

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    assert delivery.language == "fr"
    assert subject(message) == "Demo (Acme Analytics) : nous avons bien reçu votre demande"
    text = plain(message)
    assert text.startswith("Bonjour,")
    assert "Notre équipe vous répondra par e-mail d’ici le " in text
    assert '<html lang="fr">' in message.get_body(("html",)).get_content()


def test_a_cancellation_receipt_says_what_was_canceled_and_when_it_takes_effect(smtp, demo_app, alert_for):
    services.settings_update(app=demo_app, cancellation_receipt=True)
    delivery = alert_for(Kind.RECEIPT, account={"internal_id": "acct_1", "plan": "pro", "plan_term": "monthly"},
                         context={"locale": "de-DE"})

    services.delivery_send(delivery_id=delivery.pk)

    [message] = smtp.messages()
    assert message["To"] == "jane@example.com"
    assert subject(message) == "Demo (Acme Analytics): Ihre Kündigung ist bestätigt"
    text = plain(message)
    assert "Hiermit bestätigen wir, dass Sie Ihr Abonnement bei Demo (Acme Analytics) am " in text
    assert "Tarif: pro, monthly" in text and "Abonnement: sub_1" in text
    assert "Sie wird zum Ende Ihres aktuellen Abrechnungszeitraums wirksam." in text


def test_a_receipt_states_the_apps_own_effective_date_wording(smtp, demo_app, alert_for):
    services.settings_update(app=demo_app, cancellation_receipt=True,
                             cancellation_effective="immediately, with a prorated refund")
    delivery = alert_for(Kind.RECEIPT, context={"locale": "es"})

    services.delivery_send(delivery_id=delivery.pk)

    text = plain(smtp.messages()[0])
    assert "Entra en vigor immediately, with a prorated refund." in text
    assert text.startswith("Hola:")


def test_a_customer_known_only_by_account_id_gets_nothing(demo_app, decide):
    services.settings_update(app=demo_app, cancellation_receipt=True)

    decide("cancel", email="")

    assert not AlertDelivery.objects.filter(kind=Kind.RECEIPT).exists()


def test_customer_messages_retry_like_team_alerts(smtp, demo_app, alert_for, settings):
    smtp.answers = ["421 4.3.2 Try later"]
    services.settings_update(app=demo_app, cancellation_receipt=True)
    delivery = alert_for(Kind.RECEIPT)

    result = services.delivery_send(delivery_id=delivery.pk)

    assert result.retry_in is not None
    delivery.refresh_from_db()
    assert delivery.status == AlertDelivery.Status.PENDING and "421 4.3.2 Try later" in delivery.last_error


def test_no_second_receipt_when_the_receipts_channel_sends_one(settings, demo_app, decide):
    settings.BRIGHTBACK_CUSTOMER_EMAILS = ["receipts.selectors.receipt_promised"]
    services.settings_update(app=demo_app, cancellation_receipt=True)

    decision = decide("cancel")

    assert not AlertDelivery.objects.filter(kind=Kind.RECEIPT).exists()
    assert decision.session.receipts.count() == 1


def test_the_alerts_receipt_goes_when_the_app_turns_the_receipts_channel_off(settings, demo_app, decide):
    settings.BRIGHTBACK_CUSTOMER_EMAILS = ["receipts.selectors.receipt_promised"]
    services.settings_update(app=demo_app, cancellation_receipt=True)
    from receipts.services import settings_update as receipts_settings_update  # the App turned them off

    receipts_settings_update(app=demo_app, enabled=False)
    decide("cancel")

    assert AlertDelivery.objects.filter(kind=Kind.RECEIPT).count() == 1
