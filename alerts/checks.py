"""System checks: configurations under which alerts would silently misbehave."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

HANDLER = "alerts.handlers.on_event"
SECTION = "alerts.document.AlertsSection"


@register()
def alert_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    problems = []
    if HANDLER not in settings.BRIGHTBACK_EVENT_HANDLERS:
        problems.append(Warning(
            f"BRIGHTBACK_EVENT_HANDLERS does not name {HANDLER}: no alert will be sent.",
            hint=f"Add {HANDLER} to BRIGHTBACK_EVENT_HANDLERS.", id="alerts.W001"))
    # A send holds its claim until it ends, at the latest when the task's hard time limit kills it.
    if settings.ALERT_LEASE_SECONDS <= TIME_LIMIT:
        problems.append(Warning(
            f"ALERT_LEASE_SECONDS ({settings.ALERT_LEASE_SECONDS:g}) is not above the longest a worker may hold "
            f"an alert ({TIME_LIMIT:g} s): a slow mail server can then get the same alert from two workers.",
            hint="Leave ALERT_LEASE_SECONDS unset, or raise it.", id="alerts.W002"))
    if not settings.SITE_URL:
        problems.append(Warning(
            "SITE_URL is not set: alert emails cannot link to the session in the admin.",
            hint="Set SITE_URL=https://cancel.example.com", id="alerts.W003"))
    if SECTION not in getattr(settings, "BRIGHTBACK_DOCUMENT_SECTIONS", []):
        problems.append(Warning(
            f"BRIGHTBACK_DOCUMENT_SECTIONS does not name {SECTION}: flow documents cannot carry alert rules.",
            hint=f"Add {SECTION} to BRIGHTBACK_DOCUMENT_SECTIONS.", id="alerts.W004"))
    return problems
