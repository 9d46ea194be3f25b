"""System-check helpers every channel (webhooks, billing, alerts) runs about its own settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning


def channel_problems(*, app: str, handler: str, lease_setting: str, time_limit: float,
                     what: str) -> list[Warning]:
    """W001: the channel's event handler is not listed, so it does nothing. W002: its lease is not longer
    than a run may last (the task's hard time limit), so a slow run's row could be claimed twice.
    `what` names the channel's work in the W001 message ("no webhook will be sent")."""
    problems = []
    if handler not in settings.BRIGHTBACK_EVENT_HANDLERS:
        problems.append(Warning(
            f"BRIGHTBACK_EVENT_HANDLERS does not name {handler}: {what}.",
            hint=f"Add {handler} to BRIGHTBACK_EVENT_HANDLERS.", id=f"{app}.W001"))
    lease = getattr(settings, lease_setting)
    if lease <= time_limit:
        problems.append(Warning(
            f"{lease_setting} ({lease:g}) is not above the longest a worker may hold a claim ({time_limit:g} s): "
            "a slow run's row could then be taken over by a second worker while the first is still at it.",
            hint=f"Leave {lease_setting} unset, or raise it.", id=f"{app}.W002"))
    return problems
