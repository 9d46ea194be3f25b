"""A session's evidence: the steps of a real journey through the hosted page (and the headless API), its
flow version, decisions, billing actions and receipts, as `session_evidence` prints it, as JSON lines for
an App, and from the session's admin page."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import BillingAction, BillingConnection
from evidence.models import FlowVersion, Step
from flows.models import App, AppAccess, CancelSession
from flows.services import app_access_grant
from tests.tenants import staff_user

pytestmark = pytest.mark.django_db

FEEDBACK = "Too pricey for my team of three"


@pytest.fixture(autouse=True)
def _billing_only(settings) -> None:  # noqa: ANN001
    # The cancel's billing action is part of the evidence; webhooks and alerts are not needed here.
    settings.BRIGHTBACK_EVENT_HANDLERS = ["billing.handlers.on_event"]


def start(client: Client, snippet_data, **overrides) -> tuple[CancelSession, str]:  # noqa: ANN001, ANN003
    response = client.post("/precancel", data=json.dumps(snippet_data(**overrides)), content_type="application/json")
    assert response.status_code == 200
    url = response.json()["url"]
    return CancelSession.objects.get(token=url.rstrip("/").rsplit("/", 1)[-1]), url


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def evidence(session: CancelSession) -> dict:
    out = io.StringIO()
    call_command("session_evidence", session.public_id, stdout=out)
    return json.loads(out.getvalue())


def journey(client: Client, url: str) -> None:
    """Open the page, choose a reason and continue to the offers, then cancel: as a browser posts it."""
    page = client.get(url)
    assert page.status_code == 200
    token = csrf_of(page.content.decode())
    offers = client.post(url, {"csrfmiddlewaretoken": token, "reason": "too-expensive", "feedback": FEEDBACK,
                               "action": "continue"})
    assert offers.status_code == 200 and 'data-bb-offer="discount-30"' in offers.content.decode()
    canceled = client.post(url, {"csrfmiddlewaretoken": token, "reason": "too-expensive", "feedback": FEEDBACK,
                                 "action": "cancel"})
    assert canceled.status_code == 303


def test_a_full_journey_through_the_page_is_told_step_by_step(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    BillingConnection.objects.create(app=demo_app, provider="stripe", dry_run=True)
    session, url = start(client, snippet_data)
    CancelSession.objects.filter(pk=session.pk).update(
        compliance={"region": "US-CA", "cancel_button": "every_step", "offers": "any", "receipt": True})

    journey(client, url)

    record = evidence(session)
    assert record["session"]["id"] == session.public_id
    assert record["session"]["app"]["app_id"] == "demo"
    assert record["session"]["region"] == "US-CA"
    assert record["session"]["rules_applied"]["cancel_button"] == "every_step"

    version = FlowVersion.objects.get(flow=session.flow, number=1)
    assert record["flow_version"]["id"] == version.pk
    assert record["flow_version"]["number"] == 1
    assert record["flow_version"]["hash"] == version.content_hash
    assert record["flow_version"]["content"]["flow"]["reasons"][0]["code"] == "too-expensive"

    steps = record["steps"]
    assert [(s["kind"], s["page"] or s["action"]) for s in steps] == [
        ("view", "reasons"), ("click", "continue"), ("view", "offers"), ("click", "cancel")]
    times = [datetime.fromisoformat(s["at"]) for s in steps]
    assert all(t.tzinfo is not None for t in times)
    assert times == sorted(times)
    assert "reason:too-expensive" in steps[0]["controls"] and "cancel" in steps[0]["controls"]
    assert "feedback" in steps[0]["controls"] and "continue" in steps[0]["controls"]
    assert {"accept:discount-30", "accept:pause-2", "nevermind", "cancel", "back"} <= set(steps[2]["controls"])
    assert not any(c.startswith("accept:talk-to-us") for c in steps[2]["controls"])  # not shown for this reason
    assert steps[1]["reason"] == "too-expensive" and steps[3]["status"] == 303
    assert FEEDBACK not in json.dumps(steps)  # what the customer wrote is in the decision, not the steps

    [decision] = record["decisions"]
    assert decision["kind"] == "cancel" and decision["reason"]["code"] == "too-expensive"
    assert decision["feedback"] == FEEDBACK
    assert [event["type"] for event in record["events"]] == ["session.canceled"]
    [action] = record["billing_actions"]
    assert action["id"] == BillingAction.objects.get(session=session).public_id and action["kind"] == "cancel"
    assert record["receipts"] == []  # no receipts app on this installation


def test_the_first_view_from_the_kept_page_writes_its_step_once(client: Client, demo_app: App,
                                                                           snippet_data, settings):  # noqa: ANN001
    if connection.vendor != "postgresql":
        pytest.skip("the kept first view answers on PostgreSQL only")
    _first, first_url = start(client, snippet_data)
    client.get(first_url)  # renders the flow's first view once, and keeps it
    _second, second_url = start(client, snippet_data)
    settings.BRIGHTBACK_STEP_RECORDER = ""
    with CaptureQueriesContext(connection) as without:
        client.get(second_url)
    # Read at once: a later request empties the connection's query log the capture slices.
    ran_without = [q["sql"] for q in without.captured_queries]
    third, third_url = start(client, snippet_data)
    settings.BRIGHTBACK_STEP_RECORDER = "evidence.services.steps_record"
    with CaptureQueriesContext(connection) as with_steps:
        client.get(third_url)
    ran_with = [q["sql"] for q in with_steps.captured_queries]

    assert "AS now) clock" in ran_with[0]  # the kept page's narrow read
    assert not [sql for sql in ran_without if "evidence_step" in sql]
    assert not Step.objects.filter(session=_second).exists()
    # A first open writes its step after the read (a later view writes it in the read itself:
    # flows/tests/test_page_step_in_read.py): one INSERT, and no other write of the steps.
    steps_written = [sql for sql in ran_with if "evidence_step" in sql and "AS now) clock" not in sql]
    assert len(steps_written) == 1 and steps_written[0].startswith('INSERT INTO "evidence_step"')
    assert len(ran_with) <= len(ran_without) + 2  # that INSERT, and the first open's opened_at
    [step] = Step.objects.filter(session=third)
    assert (step.kind, step.name, step.status) == ("view", "reasons", 200)
    assert "reason:too-expensive" in step.controls and "cancel" in step.controls


def test_the_headless_api_records_its_steps_too(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    session, _url = start(client, snippet_data)
    assert client.get(f"/api/v1/pages/{session.token}").status_code == 200
    response = client.post(f"/api/v1/pages/{session.token}/decision",
                           data=json.dumps({"action": "accept", "reason": "too-expensive", "offer": "discount-30"}),
                           content_type="application/json")
    assert response.status_code == 200
    steps = evidence(session)["steps"]
    assert [(s["source"], s["kind"]) for s in steps] == [("api", "view"), ("api", "click")]
    assert "accept:discount-30" in steps[0]["controls"] and "cancel" in steps[0]["controls"]
    assert (steps[1]["action"], steps[1]["offer"], steps[1]["status"]) == ("accept", "discount-30", 200)


def test_every_decision_of_the_session_is_listed(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    session, url = start(client, snippet_data)
    token = csrf_of(client.get(url).content.decode())
    client.post(url, {"csrfmiddlewaretoken": token, "action": "nevermind"})
    client.post(url, {"csrfmiddlewaretoken": token, "action": "nevermind"})  # a replay records a click, no decision
    record = evidence(session)
    assert [d["kind"] for d in record["decisions"]] == ["nevermind"]
    assert [s["action"] for s in record["steps"] if s["kind"] == "click"] == ["nevermind", "nevermind"]


def test_app_and_since_write_one_json_line_per_session(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    old, _ = start(client, snippet_data)
    CancelSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    first, first_url = start(client, snippet_data)
    journey(client, first_url)
    second, _ = start(client, snippet_data, email="sam@example.com")
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    out = io.StringIO()
    call_command("session_evidence", "--app", "demo", "--since", since, stdout=out)

    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["session"]["id"] for r in records] == [first.public_id, second.public_id]
    assert len(records[0]["steps"]) == 4 and records[1]["steps"] == []
    out = io.StringIO()
    call_command("session_evidence", "--app", "demo", "--since", (timezone.localdate() + timedelta(days=1)).isoformat(),
                 stdout=out)
    assert out.getvalue() == ""


def test_the_command_refuses_what_it_cannot_answer(demo_app: App):
    with pytest.raises(CommandError, match="No such session"):
        call_command("session_evidence", "ses_nothing", stdout=io.StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("session_evidence", "--app", "demo", "--since", "last tuesday", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No such app"):
        call_command("session_evidence", "--app", "nope", "--since", "2026-01-01", stdout=io.StringIO())
    with pytest.raises(CommandError, match="both"):
        call_command("session_evidence", "--app", "demo", stdout=io.StringIO())


def test_the_sessions_admin_page_links_its_evidence_for_its_apps_staff_only(client: Client, admin_client: Client,
                                                                            demo_app: App, snippet_data):  # noqa: ANN001
    session, url = start(client, snippet_data)
    journey(client, url)
    evidence_url = reverse("evidence:session", args=[session.pk])

    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    assert f'href="{evidence_url}" data-bb-link="evidence">Evidence (JSON)</a>' in page
    answer = admin_client.get(evidence_url)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert answer.json()["session"]["id"] == session.public_id and len(answer.json()["steps"]) == 4

    other = App.objects.create(app_id="globex", name="Globex")
    outsider = staff_user("outsider", view_all=True)
    app_access_grant(app=other, user=outsider, role=AppAccess.Role.VIEWER)
    without_permission = staff_user("nobody")
    app_access_grant(app=demo_app, user=without_permission, role=AppAccess.Role.VIEWER)
    for user, status in ((outsider, 404), (without_permission, 403)):
        staff = Client()
        staff.force_login(user)
        assert staff.get(evidence_url).status_code == status
    assert Client().get(evidence_url).status_code == 302  # to the admin's login


def test_after_erasure_the_evidence_names_no_one(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    session, url = start(client, snippet_data)
    journey(client, url)
    call_command("customer_erase", "--app", "demo", "--email", "jane@example.com", stdout=io.StringIO(),
                 stderr=io.StringIO())
    session.refresh_from_db()
    text = json.dumps(evidence(session))
    for personal in ("jane@example.com", "acct_42", "sub_1", FEEDBACK):
        assert personal not in text
    assert json.loads(text)["steps"][0]["page"] == "reasons"  # what was shown and pressed stays
