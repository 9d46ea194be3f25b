"""The billing channel's entry points, named in settings (flows never imports billing)."""

from __future__ import annotations

from flows.models import Decision, Event

from . import selectors, services


def on_event(event: Event) -> None:
    """BRIGHTBACK_EVENT_HANDLERS: called by flows.services.event_record inside the event's transaction."""
    services.actions_create_for_event(event=event)


def save_still_active(decision: Decision) -> bool | None:
    """BRIGHTBACK_SAVE_CHECKS: is the saved customer's subscription still active in the billing system?
    None when billing cannot tell (no connection, dry run, or the provider did not answer)."""
    return selectors.subscription_still_active(session=decision.session)
