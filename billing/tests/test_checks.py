"""System checks catch configurations under which billing actions would silently misbehave."""

from __future__ import annotations


def test_system_check_warns_when_billing_is_not_an_event_handler_or_the_lease_is_too_short(settings):
    from billing.checks import billing_settings

    assert billing_settings(None) == []
    settings.BRIGHTBACK_EVENT_HANDLERS = ["webhooks.handlers.on_event"]
    settings.BILLING_LEASE_SECONDS = 5
    assert {w.id for w in billing_settings(None)} == {"billing.W001", "billing.W002"}
