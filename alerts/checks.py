"""System checks: configurations under which alerts would silently misbehave."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

from brightback_site.checks import channel_problems

HANDLER = "alerts.handlers.on_event"
SECTION = "alerts.document.AlertsSection"


@register()
def alert_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    problems = channel_problems(app="alerts", handler=HANDLER, lease_setting="ALERT_LEASE_SECONDS",
                                time_limit=TIME_LIMIT, what="no alert will be sent")
    if not settings.SITE_URL:
        problems.append(Warning(
            "SITE_URL is not set: alert emails cannot link to the session in the admin.",
            hint="Set SITE_URL=https://cancel.example.com", id="alerts.W003"))
    if SECTION not in getattr(settings, "BRIGHTBACK_DOCUMENT_SECTIONS", []):
        problems.append(Warning(
            f"BRIGHTBACK_DOCUMENT_SECTIONS does not name {SECTION}: flow documents cannot carry alert rules.",
            hint=f"Add {SECTION} to BRIGHTBACK_DOCUMENT_SECTIONS.", id="alerts.W004"))
    return problems
