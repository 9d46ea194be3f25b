"""The way back: a cancel receipt's signed link opens a page whose one button keeps the subscription,
recording `session.reactivated` once; billing (the local Stripe server, read back directly) removes the
scheduled cancel, webhooks deliver the event, alerts can announce it, and reports count a win-back."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import AlertDelivery
from billing import services as billing_services
from billing.models import BillingAction
from billing.testing import FakeBilling, fake_billing
from flows import csrf
from flows.models import App, Event
from receipts import links, services
from receipts.models import Receipt
from webhooks import endpoints as webhook_endpoints
from webhooks import services as webhook_services
from webhooks.testing import Receiver

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://cancel\.example\.com(/r/[^\s\"<]+)")


def way_back_path(smtp) -> str:  # noqa: ANN001
    text = smtp.accepted[-1].message.get_body(("plain",)).get_content()
    match = LINK.search(text)
    assert match, text
    return match.group(1)


def post(client, path: str):  # noqa: ANN001, ANN201
    token = path.rsplit("/", 1)[1]
    return client.post(path, {"csrfmiddlewaretoken": csrf.page_form_token(token), "action": "reactivate"})


def reactivations(session) -> int:  # noqa: ANN001
    return Event.objects.filter(session=session, type=Event.Type.SESSION_REACTIVATED).count()


def test_the_receipts_link_keeps_the_subscription_and_a_second_click_records_nothing(client, smtp, receipt_for):
    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    path = way_back_path(smtp)

    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-bb-action="reactivate"' in html and "<script" not in html
    assert page["Content-Security-Policy"].startswith("default-src 'none'")

    first = post(client, path)
    assert first.status_code == 303 and reactivations(receipt.session) == 1
    second = post(client, path)
    assert second.status_code == 303 and reactivations(receipt.session) == 1
    kept = client.get(path).content.decode()
    assert "Your subscription continues" in kept and 'data-bb-action="reactivate"' not in kept
    event = Event.objects.get(session=receipt.session, type=Event.Type.SESSION_REACTIVATED)
    assert event.data["session_id"] == receipt.session.public_id and event.data["reactivated_at"]


def test_the_page_is_in_the_sessions_language(client, smtp, receipt_for):
    receipt = receipt_for(context={"locale": "de-DE"})
    services.receipt_send(receipt_id=receipt.pk)
    page = client.get(way_back_path(smtp))
    assert page["Content-Language"] == "de" and "Abonnement behalten" in page.content.decode()


def test_a_tampered_link_is_refused_and_changes_nothing(client, smtp, receipt_for):
    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    path = way_back_path(smtp)
    forged = links.way_back_token(session_id=receipt.session.public_id, until=timezone.now() + timedelta(days=400))
    tampered = [path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"), f"/r/{forged[:-1]}x", "/r/nonsense"]
    for bad in tampered:
        assert client.get(bad).status_code == 400, bad
        assert post(client, bad).status_code == 400, bad
    assert reactivations(receipt.session) == 0


def test_a_form_without_its_token_is_refused(smtp, receipt_for):
    from django.test import Client

    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    response = Client(enforce_csrf_checks=True).post(way_back_path(smtp), {"action": "reactivate"})
    assert response.status_code == 403 and reactivations(receipt.session) == 0


def test_after_the_cancel_takes_effect_the_link_says_so_and_points_to_support(client, demo_app, receipt_for):
    App.objects.filter(pk=demo_app.pk).update(support_email="help@acme.example.com")
    services.settings_update(app=demo_app, support_url="https://acme.example.com/help")
    receipt = receipt_for()
    ended = links.way_back_token(session_id=receipt.session.public_id, until=timezone.now() - timedelta(minutes=1))

    for response in (client.get(f"/r/{ended}"), post(client, f"/r/{ended}")):
        assert response.status_code == 410
        html = response.content.decode()
        assert "Your subscription has ended" in html and "help@acme.example.com" in html
        assert "https://acme.example.com/help" in html and 'data-bb-action="reactivate"' not in html
    assert reactivations(receipt.session) == 0


def test_a_session_that_was_not_canceled_has_nothing_to_keep(client, decide):
    decision = decide("nevermind")
    token = links.way_back_token(session_id=decision.session.public_id, until=timezone.now() + timedelta(days=1))
    assert post(client, f"/r/{token}").status_code == 409
    assert reactivations(decision.session) == 0


def test_a_cancel_that_took_effect_at_once_has_no_way_back(smtp, demo_app, receipt_for):
    services.settings_update(app=demo_app, cancel_takes_effect="immediately")
    receipt = receipt_for()
    services.receipt_send(receipt_id=receipt.pk)
    text = smtp.accepted[0].message.get_body(("plain",)).get_content()
    assert "/r/" not in text and "Your subscription ended on" in text


def test_the_way_back_is_delivered_as_a_webhook_and_can_raise_an_alert(client, smtp, demo_app, receipt_for):
    with Receiver() as receiver:
        endpoint = webhook_endpoints.endpoint_create(app=demo_app, url=receiver.url,
                                                    event_types=["session.reactivated"])
        receiver.secrets = [endpoint.secret]
        alert_services.rule_create(app=demo_app, events=["session.reactivated"], recipients=["team@acme.example.com"])
        receipt = receipt_for()
        services.receipt_send(receipt_id=receipt.pk)
        post(client, way_back_path(smtp))

        [delivery] = endpoint.deliveries.all()
        webhook_services.delivery_attempt(delivery_id=delivery.pk)
        [got] = receiver.wait_for(lambda got: len(got) >= 1, timeout=10)
    assert got.verified and got.payload["type"] == "session.reactivated"
    assert got.payload["data"]["session_id"] == receipt.session.public_id
    [alert] = AlertDelivery.objects.filter(event_type="session.reactivated")
    assert alert.recipients == ["team@acme.example.com"]


def test_reports_count_a_customer_who_came_back_as_saved_not_canceled(client, smtp, demo_app, receipt_for):
    def summary() -> dict:
        call_command("reports_refresh", stdout=io.StringIO())
        out = io.StringIO()
        call_command("report_summary", demo_app.app_id, "--include-test", stdout=out)
        return json.loads(out.getvalue())

    receipt = receipt_for()
    before = summary()
    assert (before["canceled"], before["saved"]) == (1, 0)
    services.receipt_send(receipt_id=receipt.pk)
    post(client, way_back_path(smtp))
    after = summary()
    assert (after["canceled"], after["saved"]) == (0, 1)


# --- with the billing system connected: the local Stripe server, read back directly ---------------

@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeBilling]:
    server = fake_billing("stripe")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def stripe(demo_app, stripe_server):  # noqa: ANN001, ANN201
    stripe_server.reset()
    creds = stripe_server.credentials()
    billing_services.connection_save(app=demo_app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)
    return stripe_server


def run_billing(**where) -> BillingAction:  # noqa: ANN003
    action = BillingAction.objects.get(**where)
    assert billing_services.action_execute(action_id=action.pk).status == BillingAction.Status.SUCCEEDED
    action.refresh_from_db()
    return action


def test_with_stripe_the_receipt_states_billings_date_and_the_way_back_removes_the_scheduled_cancel(
        client, smtp, stripe, receipt_for):
    sub = stripe.seed(customer_id="cus_9")
    receipt = receipt_for(subscription_id=sub, account={"internal_id": "acct_42", "billing_id": "cus_9"})

    waiting = services.receipt_send(receipt_id=receipt.pk)  # billing has not answered yet
    assert waiting.outcome == "waiting" and smtp.accepted == []

    run_billing(session=receipt.session, kind="cancel")
    remote = stripe.remote(sub)
    assert remote.cancel_at_period_end and not remote.canceled
    Receipt.objects.filter(pk=receipt.pk).update(next_attempt_at=timezone.now())
    assert services.receipt_send(receipt_id=receipt.pk).outcome == Receipt.Status.SUCCEEDED

    receipt.refresh_from_db()
    assert receipt.effective_source == Receipt.Source.BILLING
    assert abs(receipt.effective_at - remote.next_bill_at) < timedelta(seconds=1)
    assert receipt.way_back_until == receipt.effective_at
    text = smtp.accepted[0].message.get_body(("plain",)).get_content()
    assert "Your subscription ends on" in text

    assert post(client, way_back_path(smtp)).status_code == 303
    post(client, way_back_path(smtp))  # a second click: nothing new for billing either
    action = run_billing(session=receipt.session, kind="reactivate")
    assert action.event.type == Event.Type.SESSION_REACTIVATED
    assert BillingAction.objects.filter(session=receipt.session, kind="reactivate").count() == 1
    remote = stripe.remote(sub)
    assert remote.cancel_at_period_end is False and not remote.canceled


def test_the_way_back_is_rate_limited_like_the_hosted_page(client, settings, decide):
    settings.RATE_LIMIT_RULES = {**settings.RATE_LIMIT_RULES, "decision-ip": "2/m"}
    decision = decide("nevermind")  # nothing to keep: each POST that gets through is a 409
    token = links.way_back_token(session_id=decision.session.public_id, until=timezone.now() + timedelta(days=1))
    answers = [post(client, f"/r/{token}") for _ in range(3)]
    assert [a.status_code for a in answers] == [409, 409, 429]
    assert int(answers[-1]["Retry-After"]) > 0 and "Nothing was changed" in answers[-1].content.decode()
