"""The billing channel's entry points, named in settings (flows never imports billing)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flows import recording
from flows.models import App, Decision, Event

from . import payments, selectors, services
from .models import BillingAction


def on_event(event: Event) -> None:
    """BRIGHTBACK_EVENT_HANDLERS: called by flows.services.event_record inside the event's transaction."""
    services.actions_create_for_event(event=event)


def decision_rows(event: Event, *, alias: str) -> object:
    """flows/recording.py's question for a decision's event: None when billing does nothing for it (no
    connection, or an event it does not act on: on_event would write nothing, so the decision needs no
    transaction for this channel), else LATER: on_event writes the action in the decision's transaction."""
    return recording.LATER if services.actions_wanted(event=event) else None


def event_billing(event: Event) -> dict | None:
    """BRIGHTBACK_EVENT_BILLING: the billing action of a recorded event, as it stands, or what billing
    would do for an event not recorded (a test alert's), described as a `billing.action_failed` event
    describes one. Alerts show it, so nobody repeats by hand what billing is already doing; a recorded
    event's also says when the change takes effect (`effective_at`, once done), which receipts state."""
    if not event._state.adding:
        action = selectors.action_for_event(event_id=event.pk)
        if action is None:
            return None
        return {**services.action_described(action), "effective_at": services.action_effective_at(action)}
    planned = services.action_planned(event=event)
    if planned is None:
        return None
    connection, kind, request = planned
    return {"action": kind, "provider": connection.provider,
            "status": BillingAction.Status.SKIPPED if connection.dry_run else BillingAction.Status.PENDING,
            "error": None, "subscription_id": request.get("subscription_id") or None}


def save_still_active(decision: Decision) -> bool | None:
    """BRIGHTBACK_SAVE_CHECKS: is the saved customer's subscription still active in the billing system?
    None when billing cannot tell (no connection, dry run, or the provider did not answer)."""
    verdict = selectors.subscription_still_active(session=decision.session)
    if verdict:  # confirmed now: keep what the save actually brought in (billing/payments.py)
        payments.save_payments_read(decision=decision)
    return verdict


def paid_after_saves(*, start: datetime, end: datetime) -> dict[int, dict[str, Decimal]]:
    """BRIGHTBACK_PAID_AFTER_SAVES: what the saves of sessions created in [start, end) paid over their watch
    windows, by session pk and currency, where billing read it."""
    return payments.paid_after_saves(start=start, end=end)


def apps_with_billing(*, app_ids: list[int] | None = None) -> set[int]:
    """BRIGHTBACK_SAVES_FROM_BILLING: the Apps whose saves billing confirms (connected, not a dry run)."""
    return selectors.apps_with_billing(app_ids=app_ids)


def cancel_timing(app: App) -> str | None:
    """BRIGHTBACK_CANCEL_TIMING: when a Cancel on this App's page takes effect in billing ("immediately" or
    "period_end"), from the connection this process keeps in memory; None without a connection."""
    connection = services.app_connection(app=app)
    return connection.cancel_timing if connection is not None else None
