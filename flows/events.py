"""Events (DESIGN §4) and their hand-over to the channels: written in the transaction of what caused them,
each handed to every channel named in BRIGHTBACK_EVENT_HANDLERS, which writes its outbox rows in that same
transaction. flows.services re-exports these: callers name them there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from . import selectors
from .models import CancelSession, Decision, Event


def event_payload(*, event_id: str, session: CancelSession, decision: Decision | None,
                  extra: dict | None = None) -> dict:
    """The `data` object of a webhook (DESIGN §5), frozen when the event happens."""
    offer = decision.offer if decision is not None else None
    data = {
        "event_id": event_id,
        "app_id": session.app.app_id,
        "session_id": session.public_id,
        "test": session.is_test,
        "email": session.email or None,
        "account": session.account,
        "subscription_id": session.subscription_id or None,
        "reason": ({"code": decision.reason_code, "label": decision.reason_label}
                   if decision is not None and decision.reason_code else None),
        "feedback": decision.feedback if decision is not None else "",
        "offer": ({"code": offer.code, "type": offer.kind, "title": offer.title, "terms": offer.terms()}
                  if offer is not None else None),
        "custom": session.data.get("custom", {}),
        "context": session.data.get("context", {}),
    }
    if extra:
        data.update(extra)
    return data


@lru_cache(maxsize=8)
def _handlers(paths: tuple[str, ...]) -> list[tuple[Callable[[Event], object], Callable[[list[Event]], object] | None]]:
    """Each channel's `on_event`, and its module's `on_events` when the handler is named `on_event` and
    the module has one (the batch form; see event_record_many)."""
    found = []
    for path in paths:
        module, _, name = path.rpartition(".")
        many = None
        if name == "on_event":
            try:
                many = import_string(f"{module}.on_events")
            except ImportError:
                many = None
        found.append((import_string(path), many))
    return found


def event_record(*, session: CancelSession, type: str, decision: Decision | None = None,
                 extra: dict | None = None) -> Event:
    """Write an event and hand it to every channel, inside the caller's transaction.

    The channels are settings.BRIGHTBACK_EVENT_HANDLERS, dotted paths of `on_event(event)`. Each is
    called inside this transaction and writes its outbox rows there (so they commit or roll back with
    the event), publishing them on commit; their sweepers publish anything the broker did not take.
    A handler named `on_event` may have a sibling `on_events(events)` in its module: the batch form
    that event_record_many calls with many events of one transaction. It must write exactly the rows
    `on_event` would write for each event (typically with one bulk_create), and it is optional:
    channels without it get `on_event` once per event.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction of what caused the event")
    event = event_unsaved(session=session, type=type, decision=decision, extra=extra)
    event.save(force_insert=True)
    event_hand_over(event)
    return event


def event_unsaved(*, session: CancelSession, type: str, decision: Decision | None = None,
               extra: dict | None = None) -> Event:
    event = Event(app=session.app, session=session, type=type)
    event.data = event_payload(event_id=event.id, session=session, decision=decision, extra=extra)
    return event


def event_hand_over(event: Event, *, paths: Sequence[str] | None = None) -> None:
    """Hand a written event to every channel (event_record's docstring), or to those `paths` name (a
    decision's: the others wrote with it), in its transaction."""
    with selectors.app_versions_read_once():  # each channel reads its configuration under one App version
        for handler, _many in _handlers(tuple(settings.BRIGHTBACK_EVENT_HANDLERS if paths is None else paths)):
            handler(event)


def event_record_many(*, type: str, sessions: Sequence[CancelSession],
                      extras: Sequence[dict | None] | None = None) -> list[Event]:
    """Write one `type` event (without a decision) per session, in one INSERT, and hand them to every
    channel, inside the caller's transaction: what event_record does for each, in a few statements
    however many sessions there are. Channels with `on_events` take the whole list at once; the others
    get `on_event` per event. Like event_record, a session that already has an event of this type makes
    the whole transaction fail (the Event table's unique key)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record_many must run inside the transaction of what caused the events")
    if extras is not None and len(extras) != len(sessions):
        raise ValueError("extras must give one entry per session")
    events = []
    for index, session in enumerate(sessions):
        event = Event(app=session.app, session=session, type=type)
        event.data = event_payload(event_id=event.id, session=session, decision=None,
                                   extra=extras[index] if extras is not None else None)
        events.append(event)
    if not events:
        return []
    Event.objects.bulk_create(events)
    with selectors.app_versions_read_once():  # each channel reads its configuration under one App version
        for handler, many in _handlers(tuple(settings.BRIGHTBACK_EVENT_HANDLERS)):
            if many is not None:
                many(events)
            else:
                for event in events:
                    handler(event)
    return events
