"""System checks: configurations under which webhooks would silently misbehave."""

from __future__ import annotations

from django.core.checks import Warning, register

from brightback_site.checks import channel_problems

HANDLER = "webhooks.handlers.on_event"


@register()
def webhook_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import CLAIM_HELD_AT_MOST

    return channel_problems(app="webhooks", handler=HANDLER, lease_setting="WEBHOOK_LEASE_SECONDS",
                            time_limit=CLAIM_HELD_AT_MOST, what="no webhook will be sent")
