"""Alerts ride the shared outbox: rows written with their event, woken on commit, swept when lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from alerts import selectors, services
from alerts.models import AlertDelivery
from brightback_site import outbox
from brightback_site.celery import app as celery_app
from flows.models import Event

pytestmark = pytest.mark.django_db

Status = AlertDelivery.Status


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    outbox.resume()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


def test_a_decision_wakes_its_alerts_once_it_commits(smtp, make_rule, decide, eager_celery,
                                                     django_capture_on_commit_callbacks, settings):
    settings.BRIGHTBACK_EVENT_HANDLERS = ["alerts.handlers.on_event"]  # this channel's wake-up alone
    make_rule()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        decision = decide("cancel")
        assert smtp.accepted == []  # nothing leaves before the commit

    assert len(callbacks) == 1
    [message] = smtp.wait_for(1, timeout=10)
    assert message["Subject"] == "[Test] Canceled: jane@example.com (pro, 49)"
    assert AlertDelivery.objects.get(event__session=decision.session).status == Status.SUCCEEDED


def test_a_rolled_back_decision_leaves_no_alert(make_rule, decide):
    make_rule()

    with pytest.raises(RuntimeError), transaction.atomic():
        decide("cancel")
        raise RuntimeError("the request failed after the decision")

    assert not AlertDelivery.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rows_must_be_written_in_the_events_transaction(make_rule, decide):
    make_rule()
    event = decide("cancel").session.events.get()

    with pytest.raises(RuntimeError, match="transaction of their event"):
        services.deliveries_create_for_event(event=event)


def test_the_sweeper_wakes_an_alert_the_broker_lost_once_per_grace_period(make_rule, decide, settings,
                                                                         eager_celery, smtp):
    settings.OUTBOX_PUBLISH_GRACE_SECONDS = 60
    make_rule()
    delivery = AlertDelivery.objects.get(event__session=decide("cancel").session)
    now = timezone.now()

    assert services.deliveries_sweep(now=now) == 0  # just written: its own wake-up is still on its way
    AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(minutes=5))
    assert services.deliveries_sweep(now=now) == 1

    [message] = smtp.wait_for(1, timeout=10)
    assert message["To"] == "help@desk.example.com"
    assert services.deliveries_sweep(now=now) == 0


def test_a_claim_whose_worker_died_is_taken_over_and_its_attempt_counted(make_rule, decide, smtp):
    make_rule()
    delivery = AlertDelivery.objects.get(event__session=decide("cancel").session)
    # A worker claimed it and counted its attempt, then died: the lease ran out.
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.SENDING, attempt_count=1, lease_expires_at=timezone.now() - timedelta(seconds=1))

    result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (result.outcome, delivery.attempt_count, len(smtp.accepted)) == (Status.SUCCEEDED, 2, 1)


def test_an_alert_held_by_a_live_worker_is_left_alone(make_rule, decide, smtp):
    make_rule()
    delivery = AlertDelivery.objects.get(event__session=decide("cancel").session)
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.SENDING, lease_expires_at=timezone.now() + timedelta(seconds=60))

    assert services.delivery_send(delivery_id=delivery.pk).outcome == "skipped"
    assert smtp.accepted == []


def test_alerts_are_retried_for_about_three_days_then_fail(settings, make_rule, decide, smtp):
    assert 2.5 * 86400 < sum(services.RETRY_DELAYS) < 3.5 * 86400
    assert services.retry_delay(attempt_number=services.MAX_ATTEMPTS) is None
    smtp.answers = ["421 4.3.2 Busy"] * services.MAX_ATTEMPTS
    settings.ALERT_RETRY_SCALE = 0.00001
    make_rule()
    delivery = AlertDelivery.objects.get(event__session=decide("cancel").session)

    for _ in range(services.MAX_ATTEMPTS):
        services.delivery_send(delivery_id=delivery.pk)
        AlertDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(next_attempt_at=timezone.now())

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (Status.FAILED, services.MAX_ATTEMPTS)
    assert "421 4.3.2 Busy" in delivery.last_error


def test_a_sessions_alerts_are_listed_for_its_timeline(make_rule, decide, slack):
    make_rule(recipients=["help@desk.example.com"], slack_webhook_url=slack.url)
    session = decide("cancel").session
    decide("cancel")  # another session's

    listed = selectors.deliveries_for_session(session_id=session.pk)

    assert [d.kind for d in listed] == [AlertDelivery.Kind.TEAM_EMAIL, AlertDelivery.Kind.SLACK]
    assert {d.event.session_id for d in listed} == {session.pk}


def test_an_alert_is_claimed_and_counted_in_one_statement(make_rule, decide, smtp):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement claim is PostgreSQL's (elsewhere: a transaction of its own)")
    make_rule()
    delivery = AlertDelivery.objects.get(event__session=decide("cancel").session)

    with CaptureQueriesContext(connection) as queries:
        result = services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (result.outcome, delivery.attempt_count, len(smtp.accepted)) == (Status.SUCCEEDED, 1, 1)
    sql = [q["sql"] for q in queries.captured_queries]
    table = AlertDelivery._meta.db_table
    # Claimed (the lease taken, the attempt counted) and read back with its App and event by one statement
    # (an UPDATE … RETURNING as the WITH of the SELECT); then its finish: no BEGIN, SELECT FOR UPDATE,
    # separate read, separate count or COMMIT.
    assert sql[0].startswith("WITH") and "FOR UPDATE" in sql[0] and "RETURNING" in sql[0]
    assert "attempt_count" in sql[0] and "flows_app" in sql[0] and "flows_event" in sql[0]
    assert not any(s.startswith("SELECT") and f'FROM "{table}"' in s for s in sql[1:]), sql
    extra_updates = [s for s in sql[1:] if s.startswith("UPDATE") and table in s and "sent_at" not in s]
    assert not extra_updates and not any(s in ("BEGIN", "COMMIT") or s.startswith("SAVEPOINT") for s in sql), sql
    # A second run finds it finished and changes nothing.
    assert services.delivery_send(delivery_id=delivery.pk).outcome == "skipped"
    delivery.refresh_from_db()
    assert delivery.attempt_count == 1
