"""System checks: configurations under which webhooks would silently misbehave."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

HANDLER = "webhooks.handlers.on_event"


@register()
def webhook_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    problems = []
    if HANDLER not in settings.BRIGHTBACK_EVENT_HANDLERS:
        problems.append(Warning(
            f"BRIGHTBACK_EVENT_HANDLERS does not name {HANDLER}: no webhook will be sent.",
            hint=f"Add {HANDLER} to BRIGHTBACK_EVENT_HANDLERS.", id="webhooks.W001"))
    # A delivery run holds its claims until it ends, at the latest when the task's hard time limit kills it.
    if settings.WEBHOOK_LEASE_SECONDS <= TIME_LIMIT:
        problems.append(Warning(
            f"WEBHOOK_LEASE_SECONDS ({settings.WEBHOOK_LEASE_SECONDS:g}) is not above the longest a worker may "
            f"hold a claim ({TIME_LIMIT:g} s): a slow receiver can then get the same delivery from two workers.",
            hint="Leave WEBHOOK_LEASE_SECONDS unset, or raise it.", id="webhooks.W002"))
    return problems
