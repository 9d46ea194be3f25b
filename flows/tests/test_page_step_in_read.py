"""The hosted page's kept first view writes its evidence step in the same statement as its one read
(flows.selectors.first_view_state with page_cache.expected_steps): one round trip, and the step is the
one the page showed, whatever the expectation said."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conftest import need
from evidence.models import Step
from flows import page_cache
from flows.models import CancelSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    need(connection.vendor == "postgresql", "the narrow query reads PostgreSQL's row versions")

    def make(**overrides: object) -> CancelSession:
        response = Client().post("/precancel", data=json.dumps(snippet_data(**overrides)),
                                 content_type="application/json")
        assert response.status_code == 200
        return CancelSession.objects.get(token=response.json()["url"].rstrip("/").rsplit("/", 1)[1])

    page_cache.forget()
    return make


def view(session: CancelSession) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = Client().get(f"/c/{session.token}")
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries]


def reads_and_writes_step(sql: str) -> bool:
    """The kept first view's read that writes its step too (selectors._first_view_step_query)."""
    return sql.startswith("WITH page AS") and 'INSERT INTO "evidence_step"' in sql


def shown(session: CancelSession) -> list[tuple[str, list, int | None]]:
    return [(s.name, s.controls, s.status) for s in Step.objects.filter(session_id=session.pk).order_by("at", "id")]


def test_a_kept_first_view_reads_and_writes_its_step_in_one_statement(start):
    session = start()
    full, _ = view(session)  # renders and keeps the flow's copy
    kept, queries = view(session)  # answered from the copy: its step written on its own, its controls noted
    assert len(queries) == 2
    again, queries = view(session)
    assert len(queries) == 1 and reads_and_writes_step(queries[0])
    assert again == kept == full
    (name, controls, status), *others = shown(session)
    assert name == "reasons" and status == 200 and "continue" in controls and "nevermind" in controls
    assert others == [(name, controls, status)] * 2  # each view, the same step however it was written

    # Another customer of the same flow and rules: their first view (it opens the session) writes its step
    # after the opening, later views in their read.
    other = start(email="other@example.com")
    _, queries = view(other)
    assert len(queries) == 3 and queries[1].startswith("UPDATE")
    assert queries[2].startswith('INSERT INTO "evidence_step"')
    _, queries = view(other)
    assert len(queries) == 1
    assert shown(other) == [(name, controls, status)] * 2


def test_a_step_the_read_expected_wrongly_is_written_as_the_page_showed_it(start):
    session = start()
    view(session)
    view(session)  # notes the controls of this flow version under these rules
    ((flow_id, version, rules), controls), = page_cache._expected.items()
    page_cache.expect(flow_id=flow_id, flow_version=version, compliance=json.loads(rules), controls=("stale",))
    _, queries = view(session)
    assert len(queries) == 3 and queries[1].startswith("DELETE")
    assert queries[2].startswith('INSERT INTO "evidence_step"')
    assert [c for _, c, _ in shown(session)] == [list(controls)] * 3  # no step names the stale controls
    assert page_cache._expected[(flow_id, version, rules)] == controls  # noted afresh
    _, queries = view(session)
    assert len(queries) == 1


def test_a_step_the_read_wrote_is_taken_back_when_the_full_path_answers(start):
    session = start()
    view(session)
    view(session)
    before = shown(session)
    page_cache._pages.clear()  # the copy is gone (the process kept too many), what it showed still noted
    _, queries = view(session)
    assert reads_and_writes_step(queries[0]) and any(q.startswith("DELETE") for q in queries)
    assert shown(session) == [*before, before[0]]  # one step for the one view


def test_a_closed_session_gets_no_step_from_the_read(start):
    from datetime import timedelta

    from django.utils import timezone

    session, expired = start(), start(email="expired@example.com")
    view(session)
    view(session)
    view(expired)
    CancelSession.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(f"/c/{expired.token}")
    assert response.status_code == 410
    assert [name for name, _, _ in shown(expired)] == ["reasons", "expired"]


class FailingStatement:
    @staticmethod
    def insert(*, alias: str, rows: str) -> str:
        return f"INSERT INTO no_such_table SELECT * FROM {rows} RETURNING 1, 2"

    @staticmethod
    def withdraw(*, step_id: int) -> None:
        raise AssertionError("nothing was written")


@pytest.mark.django_db(transaction=True)
def test_a_step_the_read_cannot_write_never_fails_the_page(start, settings, caplog):  # noqa: ANN001
    session = start()
    view(session)
    view(session)
    settings.BRIGHTBACK_STEP_STATEMENT = "flows.tests.test_page_step_in_read.FailingStatement"
    page, queries = view(session)
    assert "csrfmiddlewaretoken" in page
    assert "the first view's step was not written with its read" in caplog.text
    assert len(shown(session)) == 3  # written on its own instead


@pytest.mark.django_db(transaction=True)
def test_the_step_in_the_read_commits_relaxed_and_leaves_the_connection_as_it_was(start):
    session = start()
    view(session)
    view(session)
    _, queries = view(session)
    # outside a transaction, committed without waiting for the disk
    assert len(queries) == 1 and reads_and_writes_step(queries[0]) and "'synchronous_commit', 'off'" in queries[0]
    assert len(shown(session)) == 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the statement's own transaction only
