"""What a developer and support staff do in the admin: add an endpoint, see its secret once, rotate it,
send a test event, read the delivery log and redeliver."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from webhooks import endpoints, services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint
from webhooks.testing import always

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_broker(monkeypatch):  # noqa: ANN001, ANN201
    """Record what would be published instead of needing a broker for admin pages."""
    published: list[int] = []
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: published.extend(ids) or len(ids))
    return published


def test_adding_an_endpoint_shows_its_secret_once(admin_client, demo_app):
    response = admin_client.post(reverse("admin:webhooks_endpoint_add"), {
        "app": demo_app.pk, "url": "http://127.0.0.1:9000/hooks", "description": "billing sync",
        "event_types": ["session.canceled", "offer.accepted"], "is_active": "on",
    })
    assert response.status_code == 200, response.content[:2000]
    endpoint = Endpoint.objects.get()
    assert endpoint.event_types == ["session.canceled", "offer.accepted"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    change_page = admin_client.get(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in change_page
    assert "shown only when created or rotated" in change_page


def test_an_endpoint_on_a_private_address_is_refused_in_the_form(admin_client, demo_app, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = admin_client.post(reverse("admin:webhooks_endpoint_add"), {
        "app": demo_app.pk, "url": "http://10.0.0.5/hooks", "is_active": "on"})
    assert response.status_code == 200
    assert "private, loopback" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(admin_client, make_endpoint):
    endpoint = make_endpoint("http://127.0.0.1:9000/hooks")
    old = endpoint.secret
    url = reverse("admin:webhooks_endpoint_rotate_secret", args=[endpoint.pk])
    assert admin_client.get(url).status_code == 200  # a confirmation page: GET changes nothing
    assert Endpoint.objects.get().secret == old

    page = admin_client.post(url).content.decode()

    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in page and old not in page
    assert endpoint.signing_secrets() == [endpoint.secret, old]


def test_send_test_event_queues_a_test_delivery(admin_client, make_endpoint, no_broker,
                                                django_capture_on_commit_callbacks):
    endpoint = make_endpoint("http://127.0.0.1:9000/hooks")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:webhooks_endpoint_send_test", args=[endpoint.pk]))
    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert delivery.is_test and delivery.event_type == "webhook.test"
    assert no_broker == [endpoint.pk]


def test_delivery_log_shows_attempts_and_failed_deliveries_stand_out(admin_client, receiver, make_endpoint,
                                                                      delivery_for):
    receiver.respond = always(500, body=b"receiver exploded")
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=services.MAX_ATTEMPTS - 1)
    services.delivery_attempt(delivery_id=delivery.pk)

    listing = admin_client.get(reverse("admin:webhooks_delivery_changelist"),
                               {"endpoint__id__exact": endpoint.pk}).content.decode()
    assert delivery.message_id in listing
    assert re.search(r"#cf222e[^>]*>Failed<", listing), "a failed delivery must be highlighted"

    detail = admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()
    assert "receiver exploded" in detail and "HTTP 500" in detail

    by_session = admin_client.get(reverse("admin:webhooks_delivery_changelist"),
                                  {"q": delivery.event.session.public_id}).content.decode()
    assert delivery.message_id in by_session

    endpoints = admin_client.get(reverse("admin:webhooks_endpoint_changelist")).content.decode()
    assert ">failing<" in endpoints

    attempts = admin_client.get(reverse("admin:webhooks_deliveryattempt_changelist")).content.decode()
    assert delivery.message_id in attempts


def test_redeliver_button_and_action_queue_the_delivery_again(admin_client, receiver, make_endpoint, delivery_for,
                                                              no_broker, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    first, second = delivery_for(endpoint), delivery_for(endpoint, "nevermind")
    for delivery in (first, second):
        services.delivery_attempt(delivery_id=delivery.pk)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:webhooks_delivery_redeliver", args=[first.pk]))
    assert no_broker == [endpoint.pk]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:webhooks_delivery_changelist"),
                          {"action": "redeliver", "_selected_action": [first.pk, second.pk]})
    assert no_broker == [endpoint.pk] * 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.PENDING}


def test_disabled_endpoint_stands_out_and_ticking_active_re_enables_it(admin_client, make_endpoint):
    endpoint = make_endpoint("http://127.0.0.1:9000/hooks")
    endpoints.endpoint_disable(endpoint=endpoint, reason="the receiver answered 410 Gone")
    listing = admin_client.get(reverse("admin:webhooks_endpoint_changelist")).content.decode()
    assert re.search(r"#cf222e[^>]*>disabled<", listing)
    change = admin_client.get(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk])).content.decode()
    assert "webhook.endpoint_disabled: the receiver answered 410 Gone" in change

    admin_client.post(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk]), {
        "app": endpoint.app_id, "url": endpoint.url, "is_active": "on"})

    endpoint.refresh_from_db()
    assert endpoint.state == "active" and endpoint.disabled_at is None and endpoint.disabled_reason == ""


def test_attempts_cannot_be_added_or_edited_by_hand(admin_client, receiver, make_endpoint, delivery_for):
    assert admin_client.get(reverse("admin:webhooks_deliveryattempt_add")).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_delivery_add")).status_code == 403
    delivery = delivery_for(make_endpoint(receiver.url, receiver=receiver))
    services.delivery_attempt(delivery_id=delivery.pk)
    attempt = DeliveryAttempt.objects.get()

    pages = [admin_client.get(reverse("admin:webhooks_deliveryattempt_change", args=[attempt.pk])),
             admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for field in ("status", "outcome", "status_code", "error", "attempt_count", "payload"):
            assert f'name="{field}"' not in html, field
