"""A plain POST /precancel is answered without DRF's dispatch (flows.api.precancel_view), with exactly the
answers PrecancelView itself gives; everything else is PrecancelView's to answer."""

from __future__ import annotations

import json
import re

import pytest
from django.test import RequestFactory
from rest_framework.views import APIView

from flows.api import PrecancelView

pytestmark = pytest.mark.django_db

BODIES = [
    {"app_id": "demo", "email": "jane@example.com", "account": {"internal_id": "acct_1"}},
    {"app_id": "demo", "email": "jane@example.com", "cancel_confirmation_url": "https://evil.example/x"},
    {"app_id": "nope", "email": "jane@example.com"},
    {"app_id": "demo"},
    [1, 2],
    "{not json",
    "x" * 70_000,
]


def answer(response) -> tuple:  # noqa: ANN001
    if hasattr(response, "render"):
        response.render()
    # The view's own headers (the test client's answer has the middleware's too).
    headers = {k: response.headers.get(k) for k in ("Content-Type", "Allow", "Retry-After")}
    return response.status_code, headers, re.sub(rb"/c/[\w-]+", b"/c/T", response.content)


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_a_plain_post_gets_the_answer_drf_gives(client, demo_app, body, monkeypatch):
    raw = body if isinstance(body, str) else json.dumps(body)
    dispatched = []
    real_dispatch = APIView.dispatch
    monkeypatch.setattr(APIView, "dispatch", lambda self, *a, **k: dispatched.append(1) or real_dispatch(self, *a, **k))

    fast = client.post("/precancel", data=raw, content_type="text/plain")
    assert dispatched == []
    via_drf = PrecancelView.as_view()(RequestFactory().post("/precancel", data=raw, content_type="text/plain"))
    assert dispatched == [1]
    assert answer(fast) == answer(via_drf)


def test_what_drf_must_negotiate_goes_to_the_view_class(client, demo_app, monkeypatch):
    dispatched = []
    real_dispatch = APIView.dispatch
    monkeypatch.setattr(APIView, "dispatch", lambda self, *a, **k: dispatched.append(1) or real_dispatch(self, *a, **k))
    body = json.dumps({"app_id": "demo", "email": "jane@example.com"})
    assert client.post("/precancel", data=body, content_type="application/json",
                       HTTP_ACCEPT="text/html").status_code == 406
    assert client.post("/precancel?format=xml", data=body, content_type="application/json").status_code == 404
    assert client.get("/precancel").status_code == 405
    assert client.options("/precancel").status_code == 204
    assert len(dispatched) == 4
