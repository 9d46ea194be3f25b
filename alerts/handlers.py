"""The alerts channel's entry point, named in settings.BRIGHTBACK_EVENT_HANDLERS."""

from __future__ import annotations

from flows import recording
from flows.models import Event

from . import services


def on_event(event: Event) -> None:
    """Called by flows.services.event_record inside the transaction that recorded the event."""
    services.deliveries_create_for_event(event=event)


def decision_rows(event: Event, *, alias: str) -> object:
    """flows/recording.py's question for a decision's event: None when no alert can be due for it (on_event
    would write nothing, so the decision needs no transaction for this channel), else LATER: on_event writes
    the deliveries in the decision's transaction (an alert's customer receipt asks whether receipts emails
    the customer about the decision, which only exists once the statement has run)."""
    return recording.LATER if services.deliveries_wanted(event=event) else None


def on_events(events: list[Event]) -> None:
    """The batch form of on_event (flows.services.event_record_many): the same rows, fewer statements."""
    services.deliveries_create_for_events(events=events)
