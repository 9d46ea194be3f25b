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
