"""The alerts channel's entry point, named in settings.BRIGHTBACK_EVENT_HANDLERS."""

from __future__ import annotations

from flows.models import Event

from . import services


def on_event(event: Event) -> None:
    """Called by flows.services.event_record inside the transaction that recorded the event."""
    services.deliveries_create_for_event(event=event)
