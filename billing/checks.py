"""System checks: configurations under which billing actions would silently misbehave."""

from __future__ import annotations

from django.core.checks import Warning, register

from brightback_site.checks import channel_problems

HANDLER = "billing.handlers.on_event"


@register()
def billing_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    return channel_problems(app="billing", handler=HANDLER, lease_setting="BILLING_LEASE_SECONDS",
                            time_limit=TIME_LIMIT, what="no decision will be carried out in billing")
