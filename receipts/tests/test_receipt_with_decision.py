"""A decision's receipt is written by the decision's own statement (receipts.handlers.decision_rows, beside
the channel's on_event; flows/recording.py): no INSERT of its own, the row on_event would have written, woken
when the decision commits."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from brightback_site import outbox_runs
from conftest import need
from flows import selectors
from flows import services as flow_services
from flows.models import Event
from receipts import handlers, services
from receipts.models import Receipt

pytestmark = pytest.mark.django_db

# What a receipt says, beside its keys and the moment it was written.
STATED = ("app_id", "kind", "recipient", "language", "status", "attempt_count", "lease_expires_at", "swept_at",
          "last_error", "message_id", "sent_at", "effective_at", "effective_source", "way_back_until", "last_answer")


def stated(receipt: Receipt) -> tuple:
    event = receipt.event
    return (*(getattr(receipt, name) for name in STATED), receipt.session_id == event.session_id,
            receipt.created_at == receipt.next_attempt_at == event.created_at)


@pytest.fixture
def woken(monkeypatch):  # noqa: ANN001, ANN201
    found: list[list] = []

    def wake_gated(task, *, args: list, keep_seconds: float) -> bool:  # noqa: ANN001
        found.append(args)
        return True

    monkeypatch.setattr(outbox_runs, "wake_gated", wake_gated)
    return found


def test_a_cancels_receipt_is_written_by_its_decisions_statement(decide, settings, woken, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    need(connection.vendor == "postgresql", "the decision's one statement is PostgreSQL's")
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        decision = decide("cancel", context={"locale": "fr-FR"}, email="anne@example.com")
    assert not [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "receipts_receipt"')]
    [receipt] = Receipt.objects.filter(session=decision.session)
    assert receipt.event == Event.objects.get(session=decision.session)
    assert woken == [[receipt.pk]]

    # The row the channel's on_event writes when no statement carries it (a handler of another name).
    monkeypatch.setattr(handlers, "receipt_on_event", handlers.on_event, raising=False)
    settings.BRIGHTBACK_EVENT_HANDLERS = ["receipts.handlers.receipt_on_event"]
    woken.clear()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        other = decide("cancel", context={"locale": "fr-FR"}, email="anne@example.com")
    assert [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "receipts_receipt"')]
    [alone] = Receipt.objects.filter(session=other.session)
    assert woken == [[alone.pk]]
    assert stated(receipt) == stated(alone)
    assert (receipt.recipient, receipt.language, receipt.kind, receipt.status) == (
        "anne@example.com", "fr", "cancel", "pending")


def test_a_decision_that_decides_nothing_writes_no_second_receipt(start, woken, django_capture_on_commit_callbacks):
    session = start()
    stale = selectors.session_by_token(session.token)
    with django_capture_on_commit_callbacks(execute=True):
        first = flow_services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
        again = flow_services.decision_record(session=stale, kind="cancel", reason_code="too-expensive")
    assert again == first
    assert Receipt.objects.filter(session=session).count() == 1 and len(woken) == 1


def test_an_event_without_a_decisions_statement_still_gets_its_receipt_from_on_event(decide):
    """Events not written by a decision's statement (another event's hand-over, SQLite's decisions) are the
    channel's on_event's, as before."""
    decision = decide("cancel")
    event = Event.objects.get(session=decision.session)
    Receipt.objects.filter(event=event).delete()
    with transaction.atomic():
        assert len(services.receipts_create_for_events(events=[event])) == 1
    assert Receipt.objects.filter(event=event).count() == 1
