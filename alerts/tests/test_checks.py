"""System checks catch configurations under which alerts would silently misbehave."""

from __future__ import annotations

from alerts.checks import alert_settings


def test_a_sound_configuration_raises_no_warning(settings):
    settings.SITE_URL = "https://cancel.example.com"

    assert alert_settings(None) == []


def test_system_check_warns_about_configurations_that_lose_or_duplicate_alerts(settings):
    settings.BRIGHTBACK_EVENT_HANDLERS = ["webhooks.handlers.on_event"]
    settings.ALERT_LEASE_SECONDS = 5
    settings.SITE_URL = ""
    settings.BRIGHTBACK_DOCUMENT_SECTIONS = []

    assert [w.id for w in alert_settings(None)] == ["alerts.W001", "alerts.W002", "alerts.W003", "alerts.W004"]
