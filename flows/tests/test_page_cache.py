"""The hosted page's first view is rendered once per flow content and language (flows/page_cache.py):
each customer still gets their own CSRF token and URL, and every change staff make shows at once."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from flows import page_cache, services
from flows.models import CancelSession, Flow, Reason, Variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def make(**overrides: object) -> CancelSession:
        response = Client().post("/precancel", data=json.dumps(snippet_data(**overrides)),
                                 content_type="application/json")
        assert response.status_code == 200
        return CancelSession.objects.get(token=response.json()["url"].rstrip("/").rsplit("/", 1)[1])

    return make


def first_view(session: CancelSession, browser: Client | None = None) -> str:
    response = (browser or Client()).get(f"/c/{session.token}")
    assert response.status_code == 200
    return response.content.decode()


def csrf_field(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_each_customer_gets_their_own_token_and_url_and_can_decide_with_them(start):
    page_cache.forget()
    first, second = start(), start()
    first_html, second_html = first_view(first), first_view(second)
    assert page_cache.CSRF_SLOT not in second_html and page_cache.ACTION_SLOT not in second_html
    assert f'action="/c/{second.token}"' in second_html and first.token not in second_html
    # One render served both: the same page apart from the two values.
    assert len(page_cache._pages) == 1
    assert re.sub(r"/c/[\w-]+|value=\"\w+\"", "", first_html) == re.sub(r"/c/[\w-]+|value=\"\w+\"", "", second_html)

    browser = Client(enforce_csrf_checks=True)
    html = first_view(second, browser)
    response = browser.post(f"/c/{second.token}", {"csrfmiddlewaretoken": csrf_field(html), "action": "cancel",
                                                  "reason": "too-expensive"})
    assert response.status_code == 303
    assert CancelSession.objects.get(pk=second.pk).status == CancelSession.Status.DECIDED


def test_a_change_to_the_flow_shows_on_the_next_view_however_it_was_made(start, demo_app):
    session = start()
    assert "Never mind, keep my subscription" in first_view(session)
    flow = Flow.objects.get(pk=session.flow_id)
    flow.nevermind_label = "Keep my plan"
    flow.save()
    assert "Keep my plan" in first_view(session)
    # Even a queryset update that tells no one: the flow's row is read with the session on every view.
    Flow.objects.filter(pk=flow.pk).update(nevermind_label="Stay with us")
    assert "Stay with us" in first_view(session)


def test_changed_reasons_show_once_staff_save_them(start):
    session = start()
    assert "It’s too expensive" in first_view(session)
    Reason.objects.filter(flow_id=session.flow_id, code="too-expensive").update(label="Costs too much")
    services.flow_content_changed(flow_ids=[session.flow_id])  # what the admin and the importer call
    html = first_view(session)
    assert "Costs too much" in html and "It’s too expensive" not in html


def test_the_language_and_the_variant_copy_are_the_customers_own(start):
    english = start()
    french = start(context={"locale": "fr"})
    assert "Before you go" in first_view(english)
    assert "Before you go" not in first_view(french)

    flow = Flow.objects.get(pk=english.flow_id)
    Variant.objects.create(flow=flow, code="short", title="One question before you go")
    with_variant = start(account={"internal_id": "acct_variant", "value": 10})
    assert with_variant.variant is not None
    assert "One question before you go" in first_view(with_variant)
    assert "One question before you go" not in first_view(english)


def test_a_kept_first_view_of_a_new_session_records_its_opening_with_one_update(start, demo_app):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conftest import need

    need(connection.vendor == "postgresql", "the narrow query reads PostgreSQL's row versions")
    page_cache.forget()
    Client().get(f"/c/{start().token}")  # renders and keeps the flow's copy
    session = start(email="second@example.com")
    assert session.opened_at is None
    with CaptureQueriesContext(connection) as queries:
        Client().get(f"/c/{session.token}")
    assert len(queries) == 3 and queries[0]["sql"].startswith("SELECT") and "AS now) clock" in queries[0]["sql"]
    assert queries[1]["sql"].startswith("UPDATE") and "opened_at" in queries[1]["sql"]
    assert queries[2]["sql"].startswith('INSERT INTO "evidence_step"')  # the view, for the session's evidence
    session.refresh_from_db()
    assert session.opened_at is not None


def test_a_kept_first_view_costs_one_narrow_query_and_answers_as_the_full_path(start, demo_app):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conftest import need

    need(connection.vendor == "postgresql", "the narrow query reads PostgreSQL's row versions")
    page_cache.forget()
    session = start()
    full_response = Client().get(f"/c/{session.token}")  # renders and keeps the copy
    with CaptureQueriesContext(connection) as queries:
        kept_response = Client().get(f"/c/{session.token}")
    assert len(queries) == 2 and queries[0]["sql"].startswith("SELECT") and "AS now) clock" in queries[0]["sql"]
    assert queries[1]["sql"].startswith('INSERT INTO "evidence_step"')  # the one write: the view's step
    same_headers = ("Content-Type", "Content-Language", "Content-Security-Policy", "Cache-Control", "Vary",
                    "X-Frame-Options", "Referrer-Policy")
    assert [kept_response.get(h) for h in same_headers] == [full_response.get(h) for h in same_headers]
    assert "csrftoken" not in kept_response.cookies  # the form token is the session's, no cookie
    full, kept = full_response.content.decode(), kept_response.content.decode()
    assert csrf_field(kept) == csrf_field(full)
    assert kept == full

    # Whatever the first view shows, changed anywhere, is a new copy.
    demo_app.support_email = "help@example.com"
    demo_app.save()
    assert "help@example.com" in first_view(session)


def test_only_an_open_undecided_session_is_answered_from_the_copy(start):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from conftest import need
    from flows import selectors

    need(connection.vendor == "postgresql", "the narrow query reads PostgreSQL's row versions")
    assert selectors.first_view_state("no-such-token-at-all") is False
    with CaptureQueriesContext(connection) as queries:  # an unknown link costs the one narrow query
        assert Client().get("/c/no-such-token-at-all").status_code == 404
    assert len(queries) == 1
    expired, decided, open_ = start(), start(), start()
    CancelSession.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().post(f"/c/{decided.token}", {"action": "cancel", "reason": "too-expensive"}).status_code == 303
    states = {name: selectors.first_view_state(s.token) for name, s in
              [("expired", expired), ("decided", decided), ("open", open_)]}
    assert {name: state.is_open for name, state in states.items()} == {
        "expired": False, "decided": False, "open": True}
    assert Client().get(f"/c/{expired.token}").status_code == 410
    assert Client().get(f"/c/{decided.token}").status_code == 303
