"""System checks catch configurations under which webhooks would silently misbehave."""

from __future__ import annotations


def test_system_check_warns_when_webhooks_are_not_an_event_handler(settings):
    from webhooks.checks import webhook_settings

    assert webhook_settings(None) == []
    settings.BRIGHTBACK_EVENT_HANDLERS = []
    settings.WEBHOOK_LEASE_SECONDS = 5
    assert {w.id for w in webhook_settings(None)} == {"webhooks.W001", "webhooks.W002"}
