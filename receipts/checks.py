"""System checks: configurations under which receipts would silently misbehave."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

from brightback_site.checks import channel_problems

from .services import HANDLER

PROMISE = "receipts.selectors.receipt_promised"


@register()
def receipt_settings(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ANN003
    from .tasks import TIME_LIMIT

    problems = channel_problems(app="receipts", handler=HANDLER, lease_setting="RECEIPT_LEASE_SECONDS",
                                time_limit=TIME_LIMIT, what="no receipt will be sent to customers")
    if not settings.SITE_URL:
        problems.append(Warning(
            "SITE_URL is not set: cancel receipts cannot carry their link back to keep the subscription.",
            hint="Set SITE_URL=https://cancel.example.com", id="receipts.W003"))
    if HANDLER in settings.BRIGHTBACK_EVENT_HANDLERS and PROMISE not in settings.BRIGHTBACK_CUSTOMER_EMAILS:
        problems.append(Warning(
            f"BRIGHTBACK_CUSTOMER_EMAILS does not name {PROMISE}: the confirmation page will not say that a "
            "receipt is on its way.", hint=f"Add {PROMISE} to BRIGHTBACK_CUSTOMER_EMAILS.", id="receipts.W004"))
    return problems
