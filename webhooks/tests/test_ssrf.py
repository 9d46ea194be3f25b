"""Endpoints pointing inside our own network are refused, at save time and when sending."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from brightback_site.ssrf import address_allowed
from webhooks import endpoints, services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "240.0.0.1",
])
def test_private_loopback_link_local_and_reserved_addresses_are_refused(settings, address):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(settings, address):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert address_allowed(address)


def test_allowed_networks_setting_lets_a_private_network_through(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert address_allowed("10.20.1.1")
    assert not address_allowed("10.21.1.1")


def test_endpoint_on_loopback_is_refused_at_save_unless_allowed(settings, demo_app):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    for url in ["http://127.0.0.1:8080/hook", "http://localhost/hook", "https://[::1]/hook",
                "http://169.254.169.254/latest/meta-data"]:
        with pytest.raises(ValidationError) as refused:
            Endpoint(app=demo_app, url=url).full_clean()
        assert "url" in refused.value.message_dict, url
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    Endpoint(app=demo_app, url="http://127.0.0.1:8080/hook").full_clean()


def test_only_http_and_https_urls_are_accepted(demo_app):
    with pytest.raises(ValidationError):
        Endpoint(app=demo_app, url="ftp://example.com/hook").full_clean()


def test_send_time_check_refuses_an_endpoint_that_now_resolves_to_a_private_address(
        settings, receiver, make_endpoint, delivery_for):
    # Saved while allowed (or while its DNS pointed elsewhere); the connected address is checked again.
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == DeliveryAttempt.Outcome.RETRYING
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("refused: 127.0.0.1 is a private")
    assert receiver.snapshot() == []  # not a byte reached the receiver
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.PENDING


def test_endpoint_create_refuses_bad_urls_and_unknown_event_types(demo_app):
    with pytest.raises(ValidationError):
        endpoints.endpoint_create(app=demo_app, url="http://10.0.0.1/hook")
    with pytest.raises(ValidationError):
        endpoints.endpoint_create(app=demo_app, url="http://127.0.0.1/hook", event_types=["session.exploded"])
    assert not Endpoint.objects.exists()
