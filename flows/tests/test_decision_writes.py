"""What a decision costs the database: closing the session, the Decision and its Event in one statement, and
nothing at all written when the session is not open (flows/recording.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flows import recording, selectors, services
from flows.models import CancelSession, Decision, Event

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's one-statement write")


@pytest.fixture
def session(demo_app, snippet_data):  # noqa: ANN001, ANN201
    response = Client().post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    assert response.status_code == 200
    found = selectors.session_by_token(response.json()["url"].rsplit("/", 1)[1])
    assert found is not None
    return found


def _flows_writes(queries: CaptureQueriesContext) -> list[str]:
    """The statements that wrote the session, a decision or an event (the channels' own rows aside)."""
    tables = ('"flows_cancelsession"', '"flows_decision"', '"flows_event"')
    return [q["sql"] for q in queries.captured_queries if any(table in q["sql"] for table in tables)]


@postgresql_only
def test_a_decision_closes_the_session_and_writes_the_decision_and_its_event_in_one_statement(session):
    with CaptureQueriesContext(connection) as queries:
        decision = services.decision_record(session=session, kind="cancel", reason_code="too-expensive",
                                            feedback="  too dear  ")
    assert len(_flows_writes(queries)) == 1
    # Before: an UPDATE of the session, an INSERT of the decision and an INSERT of its event.
    stored = Decision.objects.get(pk=decision.pk)
    assert (stored.session_id, stored.in_force_for_id, stored.kind) == (session.pk, session.pk, "cancel")
    assert (stored.reason_code, stored.feedback, stored.redirect_url) == ("too-expensive", "too dear",
                                                                          decision.redirect_url)
    assert stored.reason_label and stored.redirect_url.startswith("http://127.0.0.1/canceled?")
    [event] = Event.objects.filter(session_id=session.pk)
    assert event.type == "session.canceled" and event.app_id == session.app_id
    assert event.data["event_id"] == event.id and event.data["reason"]["code"] == "too-expensive"
    assert event.data["feedback"] == "too dear"
    session.refresh_from_db()
    assert session.status == "decided" and session.opened_at is not None
    assert session.flow_version == session.flow.version
    # The instances returned are the stored rows, as the ORM would have left them.
    assert not decision._state.adding and decision.session.decision == decision


@postgresql_only
def test_a_decision_on_an_expired_page_writes_nothing(session):
    CancelSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.SessionClosed):
        services.decision_record(session=session, kind="cancel")
    assert not Decision.objects.exists() and not Event.objects.exists()
    assert CancelSession.objects.get(pk=session.pk).status == "open"


def test_a_second_decision_of_the_session_writes_nothing_and_returns_the_first(session):
    first = services.decision_record(session=session, kind="nevermind")
    again = services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
    assert again == first and again.kind == "nevermind"
    assert Decision.objects.count() == 1 and Event.objects.count() == 1


def test_an_offer_not_shown_is_refused_and_leaves_the_session_open(session):
    with pytest.raises(services.BadDecision):
        services.decision_record(session=session, kind="accept", offer_code="no-such-offer")
    assert not Decision.objects.exists() and not Event.objects.exists()
    assert CancelSession.objects.get(pk=session.pk).status == "open"


def test_a_bad_decision_replayed_on_a_decided_session_still_goes_where_the_first_went(session):
    first = services.decision_record(session=session, kind="cancel")
    assert services.decision_record(session=session, kind="accept", offer_code="no-such-offer") == first


@postgresql_only
def test_the_decision_statement_is_prepared_once_per_connection(session, demo_app, snippet_data, settings):
    settings.DB_PREPARED_STATEMENTS = True
    services.decision_record(session=session, kind="cancel")
    response = Client().post("/precancel", data=json.dumps(snippet_data(email="other@example.com")),
                             content_type="application/json")
    other = selectors.session_by_token(response.json()["url"].rsplit("/", 1)[1])
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=other, kind="nevermind")
    assert not [q for q in queries.captured_queries if q["sql"].startswith("PREPARE")]
    assert Decision.objects.get(session=other).kind == "nevermind"


# A channel's rows written by the decision's statement (the `decision_rows` beside a channel's on_event): two
# evidence steps here, as any channel's model would be (a JSON column, a NULL, text of several lengths).
WRITTEN: list[tuple[str, list, list]] = []


def on_event(event: Event) -> None:
    """The test channel's handler: its rows are all written with the decision."""


def decision_rows(event: Event, *, alias: str) -> recording.Rows:
    from evidence.models import Step

    made = [Step(session_id=0, at=event.created_at, kind="note", source="test", name=event.type[:32],
                 controls=["a", {"b": 1}], status=None),
            Step(session_id=0, at=event.created_at, kind="note", source="test", name="second", status=7)]
    return recording.rows_of(made,
                             written=lambda keys: WRITTEN.append((event.id, keys, [s.pk for s in made])))


@postgresql_only
@pytest.mark.parametrize("prepared", [True, False])
def test_a_channels_rows_are_written_by_the_decisions_statement(session, settings, prepared):
    from evidence.models import Step

    settings.DB_PREPARED_STATEMENTS = prepared
    settings.BRIGHTBACK_EVENT_HANDLERS = ["flows.tests.test_decision_writes.on_event"]
    WRITTEN.clear()
    stale = selectors.session_by_token(session.token)
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
    assert len(_flows_writes(queries)) == 1  # the steps' INSERT is a part of it
    assert not [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "evidence_step"')]
    [event] = Event.objects.filter(session_id=session.pk)
    notes = list(Step.objects.filter(kind="note").order_by("id"))
    assert [(s.session_id, s.at, s.name, s.controls, s.status) for s in notes] == [
        (session.pk, event.created_at, "session.canceled", ["a", {"b": 1}], None),
        (session.pk, event.created_at, "second", [], 7)]
    keys = [s.pk for s in notes]
    assert WRITTEN == [(event.id, keys, keys)]  # told once, the instances marked saved first

    # A decision that decides nothing (the session is no longer open) writes none, and tells nobody.
    assert services.decision_record(session=stale, kind="nevermind").kind == "cancel"
    assert Step.objects.filter(kind="note").count() == 2 and len(WRITTEN) == 1


# Channels named otherwise than `on_event` have no `decision_rows` (flows/recording.py): they write in
# on_event, in the decision's transaction. Each notes what it was handed.
HANDED: list[tuple[str, str]] = []


def writing_on_event(event: Event) -> None:
    from evidence.models import Step

    HANDED.append(("writing", event.type))
    if event.data.get("feedback") == "fail":
        raise RuntimeError("the channel could not write its rows")
    Step.objects.create(session_id=event.session_id, at=event.created_at, kind="note", source="test",
                        name="writing", status=None)


def _transaction_statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"] in ("BEGIN", "COMMIT", "ROLLBACK")]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_decision_every_channel_writes_with_its_statement_needs_no_transaction(session, settings):
    from receipts.models import Receipt

    # The shipped channels, for an App with no endpoint, alert rule or billing connection: webhooks, alerts
    # and billing write nothing for the decision (their on_event, which refuses to run outside a
    # transaction, is not called), receipts writes its receipt with the statement.
    settings.BRIGHTBACK_EVENT_HANDLERS = ["webhooks.handlers.on_event", "billing.handlers.on_event",
                                          "alerts.handlers.on_event", "receipts.handlers.on_event"]
    recording._providers.cache_clear()
    with CaptureQueriesContext(connection) as queries:
        decision = services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
    assert _transaction_statements(queries) == [] and len(_flows_writes(queries)) == 1  # committed as it ran
    [event] = Event.objects.filter(session_id=session.pk)
    assert Decision.objects.get(in_force_for=session) == decision
    assert list(Receipt.objects.filter(event=event).values_list("kind", flat=True)) == ["cancel"]
    # The same decision again writes nothing and answers the first.
    assert services.decision_record(session=session, kind="nevermind") == decision
    assert Event.objects.filter(session_id=session.pk).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_channel_writing_in_on_event_gets_the_decision_in_one_transaction(demo_app, snippet_data, settings):
    from evidence.models import Step

    settings.BRIGHTBACK_EVENT_HANDLERS = ["flows.tests.test_decision_writes.writing_on_event",
                                          "receipts.handlers.on_event"]
    recording._providers.cache_clear()

    def started(email: str) -> CancelSession:
        response = Client().post("/precancel", data=json.dumps(snippet_data(email=email)),
                                 content_type="application/json")
        found = selectors.session_by_token(response.json()["url"].rsplit("/", 1)[1])
        assert found is not None
        return found

    failing = started("failing@example.com")
    with pytest.raises(RuntimeError, match="could not write"):
        services.decision_record(session=failing, kind="cancel", feedback="fail")
    # The channel failed after the statement: nothing of the decision stays, its receipt neither.
    assert not Decision.objects.filter(session=failing).exists() and not Event.objects.filter(session=failing)
    failing.refresh_from_db()
    assert failing.status == "open"

    session = started("deciding@example.com")
    HANDED.clear()
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=session, kind="cancel")
    assert _transaction_statements(queries) == ["BEGIN", "COMMIT"]
    assert HANDED == [("writing", "session.canceled")]
    assert Step.objects.filter(session=session, kind="note", name="writing").count() == 1
    assert Event.objects.filter(session=session).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_decisions_webhook_deliveries_are_written_by_its_statement_once(session, settings, snippet_data):
    from webhooks import endpoints
    from webhooks.models import Delivery, Endpoint

    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    endpoint = endpoints.endpoint_create(app=session.app, url="http://127.0.0.1:9/hook")
    settings.BRIGHTBACK_EVENT_HANDLERS = ["webhooks.handlers.on_event", "receipts.handlers.on_event"]
    recording._providers.cache_clear()
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
    assert _transaction_statements(queries) == [] and len(_flows_writes(queries)) == 1
    [event] = Event.objects.filter(session_id=session.pk)
    [delivery] = Delivery.objects.filter(event=event)
    assert (delivery.endpoint_id, delivery.message_id, delivery.status) == (endpoint.pk, event.id, "pending")
    assert delivery.payload["type"] == "session.canceled" and delivery.payload["data"]["event_id"] == event.id
    assert Endpoint.objects.get(pk=endpoint.pk).wake_requested  # woken once the statement committed

    # With a channel that writes in on_event: one transaction, the deliveries still written once, by the
    # statement, and only that channel handed the event.
    settings.BRIGHTBACK_EVENT_HANDLERS = ["webhooks.handlers.on_event",
                                          "flows.tests.test_decision_writes.writing_on_event"]
    recording._providers.cache_clear()
    response = Client().post("/precancel", data=json.dumps(snippet_data(email="other@example.com")),
                             content_type="application/json")
    other = selectors.session_by_token(response.json()["url"].rsplit("/", 1)[1])
    HANDED.clear()
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=other, kind="cancel")
    assert _transaction_statements(queries) == ["BEGIN", "COMMIT"] and HANDED == [("writing", "session.canceled")]
    assert Delivery.objects.filter(event__session=other).count() == 1
