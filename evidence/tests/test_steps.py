"""Steps are kept in one INSERT per request; on PostgreSQL outside a transaction that INSERT commits
without waiting for the disk, and leaves the connection's own setting as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from evidence.models import Step
from evidence.services import steps_record
from flows import steps
from flows.models import CancelSession, Flow


def a_session() -> CancelSession:
    from flows.models import App

    app = App.objects.create(app_id="steps", name="Steps")
    flow = Flow.objects.create(app=app, name="Default")
    now = timezone.now()
    return CancelSession.objects.create(app=app, flow=flow, data={}, expires_at=now + timedelta(days=1))


@pytest.mark.django_db(transaction=True)
def test_a_requests_steps_are_one_relaxed_insert_outside_a_transaction(settings):  # noqa: ANN001
    if connection.vendor != "postgresql":
        pytest.skip("the relaxed commit is PostgreSQL's")
    settings.DB_PREPARED_STATEMENTS = False  # the statement as it is (prepared: the next test)
    session = a_session()
    now = timezone.now()
    shown = [steps.Step(kind="click", source="page", at=now, action="continue", reason_code="too-expensive",
                        status=200),
             steps.Step(kind="view", source="page", at=now + timedelta(microseconds=5), name="offers",
                        controls=("accept:discount-30", "cancel"), status=200)]
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        steps_record(session_pk=session.pk, steps=shown)
    assert len(queries) == 1 and "synchronous_commit" in queries[0]["sql"]
    click, view = Step.objects.filter(session=session).order_by("at")
    assert (click.kind, click.action, click.reason_code, click.status, click.at) == (
        "click", "continue", "too-expensive", 200, now)
    assert (view.name, view.controls) == ("offers", ["accept:discount-30", "cancel"])
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the statement's own transaction only


def test_controls_are_read_from_the_pages_own_hooks():
    html = ('<input type="radio" name="reason" value="too-expensive"><input type="radio" name="reason" value="other">'
            '<textarea id="bb-feedback" name="feedback"></textarea><input type="hidden" name="feedback" value="x">'
            '<button type="submit" name="accept" value="d" data-bb-action="accept" data-bb-offer="discount-30">'
            '<button data-bb-action="cancel" type="submit"><button data-bb-action="cancel">')
    assert steps.controls_in(html) == ("reason:too-expensive", "reason:other", "feedback", "accept:discount-30",
                                       "cancel")


def test_a_failing_recorder_never_fails_the_page(settings, caplog):  # noqa: ANN001
    settings.BRIGHTBACK_STEP_RECORDER = "evidence.tests.test_steps.broken"
    steps.record(session_pk=1, steps=[steps.Step(kind="view", source="page")])
    assert "steps of session 1 not recorded" in caplog.text


def broken(**kwargs: object) -> None:
    raise RuntimeError("the evidence table is gone")


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's catalogue")
def test_a_step_writes_no_index_another_serves():
    # Before: the session's foreign key had an index of its own, which (session, at) already serves; every
    # page view and click wrote both.
    from flows.tests.test_session_writes import _served_by_another

    assert _served_by_another(Step._meta.db_table) == []


@pytest.mark.django_db(transaction=True)
def test_the_relaxed_insert_is_prepared_once_per_connection_and_writes_the_same_rows(settings):  # noqa: ANN001
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    from django.test.utils import CaptureQueriesContext

    from conftest import prepared_runs

    settings.DB_PREPARED_STATEMENTS = True
    session = a_session()
    now = timezone.now()
    shown = [steps.Step(kind="view", source="page", at=now + timedelta(microseconds=n), name="reasons",
                        controls=("reason:too-expensive", "cancel"), status=200) for n in range(2)]
    with CaptureQueriesContext(connection) as first:
        steps_record(session_pk=session.pk, steps=shown[:1])
    [ran] = [q["sql"] for q in first]
    assert "synchronous_commit" in ran and "$1" in ran  # its values sent apart from it
    (_, runs_before), = prepared_runs(ran)  # prepared by the driver, one statement per connection
    with CaptureQueriesContext(connection) as second:
        steps_record(session_pk=session.pk, steps=shown[1:])
    assert [q["sql"] for q in second] == [ran]
    assert prepared_runs(ran) == [(False, runs_before + 1)]
    rows = list(Step.objects.filter(session=session).order_by("at").values_list("at", "kind", "name", "controls",
                                                                                "status", "action"))
    assert rows == [(step.at, "view", "reasons", ["reason:too-expensive", "cancel"], 200, "") for step in shown]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the statement's own transaction only
