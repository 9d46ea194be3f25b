"""The click that makes a decision is written by the decision's own statement (flows/recording.py, through
settings.BRIGHTBACK_STEP_STATEMENT): no round trip of its own. A click that decides nothing (a refused or
expired decision, a replay, a click that lost the race) is recorded as it answered, as any other step."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import need
from evidence.models import Step
from flows import selectors, services, steps
from flows.models import CancelSession, Decision, Event

pytestmark = pytest.mark.django_db

BUSINESS = "https://app.example.com"


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    need(connection.vendor == "postgresql", "the decision's one statement is PostgreSQL's")
    demo_app.allowed_origins = BUSINESS
    demo_app.save()

    def make(**overrides: object) -> tuple[CancelSession, str, str]:
        """A session whose page was shown: it, its path and the page's form token."""
        response = Client().post("/precancel", data=json.dumps(snippet_data(**overrides)),
                                 content_type="application/json")
        assert response.status_code == 200
        path = urlsplit(response.json()["url"]).path
        page = Client().get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
        return CancelSession.objects.get(token=path.rstrip("/").rsplit("/", 1)[1]), path, token

    return make


def clicks(session: CancelSession) -> list[tuple[str, str, str, int | None, list]]:
    return [(s.action, s.reason_code, s.offer_code, s.status, s.controls)
            for s in Step.objects.filter(session_id=session.pk, kind="click").order_by("at", "id")]


def views(session: CancelSession) -> list[tuple[str, int | None]]:
    return [(s.name, s.status) for s in Step.objects.filter(session_id=session.pk, kind="view").order_by("at", "id")]


def post(path: str, data: dict) -> tuple[int, list[str]]:
    """POST as a browser does; the status and the round trips it cost (a statement's first PREPARE aside)."""
    with CaptureQueriesContext(connection) as queries:
        response = Client().post(path, data)
    return response.status_code, [q["sql"] for q in queries if not q["sql"].startswith("PREPARE")]


def test_a_decision_writes_its_click_in_its_own_statement(start, settings):  # noqa: ANN001
    cancel = {"reason": "too-expensive", "action": "cancel"}
    _warm, path, token = start(email="first@example.com")
    post(path, {"csrfmiddlewaretoken": token, **cancel})  # the channels' configuration read once, and kept
    settings.BRIGHTBACK_STEP_RECORDER = ""
    without, path, token = start()
    status, unrecorded = post(path, {"csrfmiddlewaretoken": token, **cancel})
    assert status == 303 and not clicks(without)

    settings.BRIGHTBACK_STEP_RECORDER = "evidence.services.steps_record"
    session, path, token = start(email="other@example.com")
    status, recorded = post(path, {"csrfmiddlewaretoken": token, **cancel})
    assert status == 303
    assert len(recorded) == len(unrecorded)  # the step costs no statement of its own
    assert not [sql for sql in recorded if sql.startswith('INSERT INTO "evidence_step"')]
    assert clicks(session) == [("cancel", "too-expensive", "", 303, [])]  # as it was written on its own
    assert Decision.objects.get(session=session).kind == "cancel"
    assert Event.objects.filter(session=session).count() == 1


def test_an_accepted_offer_in_the_modal_writes_its_click_with_the_hand_off_status(start):  # noqa: ANN001
    session, path, token = start()
    modal = f"{path}?{urlencode({'bb_display': 'modal', 'bb_origin': BUSINESS})}"
    status, _ = post(modal, {"csrfmiddlewaretoken": token, "reason": "too-expensive", "accept": "discount-30"})
    assert status == 200
    assert clicks(session) == [("accept", "too-expensive", "discount-30", 200, [])]


def test_a_refused_decision_records_its_click_as_it_answered(start):  # noqa: ANN001
    session, path, token = start()
    status, _ = post(path, {"csrfmiddlewaretoken": token, "reason": "too-expensive", "accept": "no-such-offer"})
    assert status == 400
    assert clicks(session) == [("accept", "too-expensive", "no-such-offer", 400, [])]
    assert views(session)[-1] == ("reasons", 400)

    expired, path, token = start(email="late@example.com")
    CancelSession.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    status, _ = post(path, {"csrfmiddlewaretoken": token, "action": "cancel"})
    assert status == 410
    assert clicks(expired) == [("cancel", "", "", 410, [])]
    assert views(expired)[-1] == ("expired", 410)
    assert not Decision.objects.filter(session__in=[session, expired]).exists()


def test_a_replayed_decision_records_its_click_and_nothing_else(start):  # noqa: ANN001
    session, path, token = start()
    post(path, {"csrfmiddlewaretoken": token, "action": "nevermind"})
    status, _ = post(path, {"csrfmiddlewaretoken": token, "action": "nevermind"})
    assert status == 303
    assert [c[:4] for c in clicks(session)] == [("nevermind", "", "", 303)] * 2
    assert Decision.objects.filter(session=session).count() == 1
    assert Event.objects.filter(session=session).count() == 1


def test_a_click_that_lost_the_race_is_not_written_by_the_statement(start):  # noqa: ANN001
    session, _path, _token = start()
    stale = selectors.session_by_token(session.token)  # read while open, as a concurrent request did
    first = services.decision_record(session=selectors.session_by_token(session.token), kind="nevermind",
                                     click=steps.Step(kind="click", source="page", action="nevermind", status=303))
    assert first.bb_click_recorded
    again = services.decision_record(session=stale, kind="cancel",
                                     click=steps.Step(kind="click", source="page", action="cancel", status=303))
    assert again == first and not getattr(again, "bb_click_recorded", False)  # its caller records it
    assert clicks(session) == [("nevermind", "", "", 303, [])]


class FailingStatement:
    @staticmethod
    def insert(*, alias: str, rows: str) -> str:
        return f"INSERT INTO no_such_table SELECT * FROM {rows} RETURNING 1 AS id"

    @staticmethod
    def withdraw(*, step_id: int) -> None:
        raise AssertionError("nothing was written")


def test_a_click_the_statement_cannot_write_never_costs_the_decision(start, settings, caplog):  # noqa: ANN001
    session, path, token = start()
    settings.BRIGHTBACK_STEP_STATEMENT = "flows.tests.test_decision_click_in_statement.FailingStatement"
    status, _ = post(path, {"csrfmiddlewaretoken": token, "action": "cancel"})
    assert status == 303
    assert "recorded again without its click's step" in caplog.text
    assert Decision.objects.get(session=session).kind == "cancel"
    assert Event.objects.filter(session=session).count() == 1  # the failed attempt left nothing
    assert clicks(session) == [("cancel", "", "", 303, [])]  # written on its own instead


def test_the_headless_apis_decision_writes_its_click_in_its_statement_too(start):  # noqa: ANN001
    session, _path, _token = start()
    with CaptureQueriesContext(connection) as queries:
        body = {"action": "accept", "reason": "too-expensive", "offer": "discount-30"}
        response = Client().post(f"/api/v1/pages/{session.token}/decision", content_type="application/json",
                                 data=json.dumps(body))
    assert response.status_code == 200
    assert not [q for q in queries if q["sql"].startswith('INSERT INTO "evidence_step"')]
    [step] = Step.objects.filter(session_id=session.pk, kind="click")
    assert (step.source, step.action, step.reason_code, step.offer_code, step.status) == (
        "api", "accept", "too-expensive", "discount-30", 200)
