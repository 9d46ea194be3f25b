"""What the page's Cancel button says, and what the customer's rules ask of the page (the `compliance`
recorded on their session when it started: see compliance/rules.py).

The button's words say what will happen: "now" only when the App's billing cancels at once, otherwise at the
end of the billing period (what a business acting on the webhook itself does too, and never a promise
the page cannot keep). flows never imports billing: the channels named in BRIGHTBACK_CANCEL_TIMING say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from compliance import rules

from .models import App, CancelSession, Flow

logger = logging.getLogger(__name__)

IMMEDIATELY = "immediately"
PERIOD_END = "period_end"


@lru_cache(maxsize=4)
def _askers(paths: tuple[str, ...]) -> list[Callable[[App], str | None]]:
    return [import_string(path) for path in paths]


def cancel_timing(app: App) -> str | None:
    """When a Cancel on this App's page takes effect: "immediately" or "period_end", from the first channel
    named in BRIGHTBACK_CANCEL_TIMING that knows (billing, when the App is connected); None when none does
    (the business acts on the webhook itself)."""
    for ask in _askers(tuple(settings.BRIGHTBACK_CANCEL_TIMING)):
        try:
            timing = ask(app)
        except Exception:
            logger.exception("%s failed for app %s", getattr(ask, "__qualname__", ask), app.app_id)
            continue
        if timing:
            return timing
    return None


def cancel_effective(app: App) -> str:
    """What the page promises: "immediately" only when billing cancels at once, else "period_end"."""
    return IMMEDIATELY if cancel_timing(app) == IMMEDIATELY else PERIOD_END


def cancel_label(flow: Flow, effective: str) -> str:
    """The Cancel button's words, in the active language: the flow's own, else what will happen."""
    if flow.cancel_label:
        return flow.cancel_label
    if effective == IMMEDIATELY:
        return gettext("Cancel my subscription now")
    return gettext("Cancel at the end of the billing period")


def cancel_summary(effective: str) -> str:
    if effective == IMMEDIATELY:
        return gettext("Your subscription ends now.")
    return gettext("Your subscription ends at the end of the current billing period.")


def session_effective(session: CancelSession) -> str:
    """What the page promised this customer Cancel would do, when their session started (a session from
    before sessions kept it: what billing says now)."""
    return (session.compliance or {}).get("cancel_effective") or cancel_effective(session.app)


def page_rules(compliance: dict) -> tuple[bool, str | None]:
    """What a session's rules ask of the page's copy: Cancel on every step (else on the last one only), and
    what Cancel will do (None: ask billing now). The page's cached first view is keyed by it."""
    return rules.cancel_on_every_step(compliance or {}), (compliance or {}).get("cancel_effective")
