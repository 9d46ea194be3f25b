"""System checks: configurations under which billing actions would silently misbehave."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

HANDLER = "billing.handlers.on_event"


@register()
def billing_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    problems = []
    if HANDLER not in settings.BRIGHTBACK_EVENT_HANDLERS:
        problems.append(Warning(
            f"BRIGHTBACK_EVENT_HANDLERS does not name {HANDLER}: no decision will be carried out in billing.",
            hint=f"Add {HANDLER} to BRIGHTBACK_EVENT_HANDLERS.", id="billing.W001"))
    # An action run holds its claim until it ends, at the latest when the task's hard time limit kills it.
    if settings.BILLING_LEASE_SECONDS <= TIME_LIMIT:
        problems.append(Warning(
            f"BILLING_LEASE_SECONDS ({settings.BILLING_LEASE_SECONDS:g}) is not above the longest a worker may "
            f"hold an action ({TIME_LIMIT:g} s): a slow billing system could then see the action from two workers "
            "(each still reads first, so it is changed once, but the attempt is counted twice).",
            hint="Leave BILLING_LEASE_SECONDS unset, or raise it.", id="billing.W002"))
    return problems
