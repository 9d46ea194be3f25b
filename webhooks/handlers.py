"""The webhooks channel's entry point, named in settings.BRIGHTBACK_EVENT_HANDLERS."""

from __future__ import annotations

from flows import recording
from flows.models import Event

from . import services


def on_event(event: Event) -> None:
    """Called by flows.services.event_record inside the transaction that recorded the event."""
    services.deliveries_create_for_event(event=event)


def decision_rows(event: Event, *, alias: str) -> recording.Rows | object | None:
    """A decision's deliveries, written by the decision's own statement (flows/recording.py finds this
    beside on_event); on_event is then not called for that event."""
    return services.deliveries_with_decision(event=event, alias=alias)


def on_events(events: list[Event]) -> None:
    """The batch form of on_event (flows.services.event_record_many): the same rows, fewer statements."""
    services.deliveries_create_for_events(events=events)
