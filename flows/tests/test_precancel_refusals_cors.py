"""Every /precancel refusal reaches the page's own script: CORS on errors too, for origins an App lists."""

from __future__ import annotations

import json
import time

import pytest

from flows.models import App, CancelSession

pytestmark = pytest.mark.django_db

ALLOWED = "https://app.example.com"


def post(client, body, **extra):  # noqa: ANN001, ANN003, ANN201
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/precancel", data=raw, content_type="application/json", **extra)


@pytest.fixture
def allowed_app(demo_app: App) -> App:
    demo_app.allowed_origins = ALLOWED
    demo_app.save()
    return demo_app


def readable_refusal(response, status: int, origin: str = ALLOWED) -> str:  # noqa: ANN001
    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]
    body = response.json()
    assert body["valid"] is False
    return body["message"]


def test_a_wrong_app_id_is_readable_by_an_allowed_origin(client, allowed_app, snippet_data):
    message = readable_refusal(post(client, snippet_data(app_id="no-such-app"), HTTP_ORIGIN=ALLOWED), 404)
    assert message == "No such app:no-such-app"


def test_a_malformed_body_is_readable_by_an_allowed_origin(client, allowed_app):
    assert readable_refusal(post(client, "{not json", HTTP_ORIGIN=ALLOWED), 400) == "invalid json syntax"
    assert "valid app_id" in readable_refusal(post(client, {"email": "a@b.co"}, HTTP_ORIGIN=ALLOWED), 400)


def test_a_bad_field_is_readable_by_an_allowed_origin(client, allowed_app, snippet_data):
    message = readable_refusal(post(client, snippet_data(email="not-an-email"), HTTP_ORIGIN=ALLOWED), 400)
    assert "email" in message


def test_a_refused_return_host_is_readable_by_an_allowed_origin(client, allowed_app, snippet_data):
    data = snippet_data(save_return_url="https://evil.example.net/back")
    message = readable_refusal(post(client, data, HTTP_ORIGIN=ALLOWED), 400)
    assert message == "save_return_url is not on this app's allowed return-URL hosts"
    assert not CancelSession.objects.exists()


def test_a_forged_auth_is_readable_by_an_allowed_origin(client, allowed_app, snippet_data):
    data = snippet_data(auth={"expires": int(time.time()) + 600, "hash": "0" * 64})
    readable_refusal(post(client, data, HTTP_ORIGIN=ALLOWED), 403)
    assert not CancelSession.objects.exists()


def test_an_origin_another_app_allows_reads_why_this_app_refuses_it(client, allowed_app, snippet_data):
    App.objects.create(app_id="other", name="Other", allowed_origins="https://other.example.org")
    message = readable_refusal(post(client, snippet_data(), HTTP_ORIGIN="https://other.example.org"), 403,
                               origin="https://other.example.org")
    assert message == "origin https://other.example.org is not allowed for app:demo"
    assert not CancelSession.objects.exists()


def test_the_drf_served_path_carries_the_same_headers(client, allowed_app, snippet_data):
    # An Accept with parameters goes through DRF's negotiation rather than the plain path.
    response = post(client, "{not json", HTTP_ORIGIN=ALLOWED, HTTP_ACCEPT="application/json; q=1")
    assert readable_refusal(response, 400) == "invalid json syntax"


@pytest.mark.parametrize("body", ["{not json", {"app_id": "no-such-app", "email": "a@b.co"}])
def test_an_origin_no_app_lists_reads_no_refusal(client, allowed_app, body):
    response = post(client, body, HTTP_ORIGIN="https://evil.example.net")
    assert response.status_code in (400, 404)
    assert "Access-Control-Allow-Origin" not in response
