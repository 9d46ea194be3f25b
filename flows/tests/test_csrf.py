"""The hosted page's form token (flows/csrf.py): bound to the session, no cookie, checked on every POST."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from flows import csrf
from flows.models import CancelSession, Decision

pytestmark = pytest.mark.django_db


def open_page(browser: Client, snippet_data, **overrides) -> tuple[str, str]:  # noqa: ANN001, ANN003
    answer = browser.post("/precancel", json.dumps(snippet_data(**overrides)), content_type="application/json").json()
    path = urlsplit(answer["url"]).path
    page = browser.get(path)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return path, token


def test_a_decision_needs_no_cookie_only_the_pages_own_form_token(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    path, token = open_page(browser, snippet_data)
    assert "csrftoken" not in browser.cookies  # as inside a third-party frame, where it would be blocked

    cookieless = Client(enforce_csrf_checks=True)
    response = cookieless.post(path, {"csrfmiddlewaretoken": token, "action": "cancel", "reason": "too-expensive"})
    assert response.status_code == 303
    assert Decision.objects.get().kind == "cancel"
    # The same POST again (a double click, a replay) records nothing new and goes the same way.
    again = cookieless.post(path, {"csrfmiddlewaretoken": token, "action": "cancel", "reason": "too-expensive"})
    assert again.status_code == 303 and again["Location"] == response["Location"]
    assert Decision.objects.count() == 1


def test_a_post_without_the_form_token_is_refused_and_records_nothing(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    path, _ = open_page(browser, snippet_data)
    response = browser.post(path, {"action": "cancel", "reason": "too-expensive"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not Decision.objects.exists()


def test_another_sessions_form_token_is_refused(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    mine, _ = open_page(browser, snippet_data)
    _, theirs = open_page(browser, snippet_data, email="someone@example.com")
    response = browser.post(mine, {"csrfmiddlewaretoken": theirs, "action": "cancel"})
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_the_form_token_is_not_computable_from_the_link_alone(demo_app, snippet_data, settings) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    path, token = open_page(browser, snippet_data)
    session = CancelSession.objects.get()
    assert token == csrf.page_form_token(session.token)
    assert session.token not in token
    settings.SECRET_KEY = "another-secret-key"
    assert csrf.page_form_token(session.token) != token


def test_a_page_opened_before_a_key_rotation_still_validates(settings, rf) -> None:  # noqa: ANN001
    token = csrf.page_form_token("a-session-token")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key"
    assert csrf.page_form_valid(rf.post("/", {"csrfmiddlewaretoken": token}), "a-session-token")
    settings.SECRET_KEY_FALLBACKS = []
    assert not csrf.page_form_valid(rf.post("/", {"csrfmiddlewaretoken": token}), "a-session-token")
    assert not csrf.page_form_valid(rf.post("/", {}), "a-session-token")


def test_the_form_token_is_djangos_salted_hmac_of_the_session_token(settings) -> None:  # noqa: ANN001
    from django.utils.crypto import salted_hmac

    for secret in ("one secret", "another secret, rotated in"):
        settings.SECRET_KEY = secret
        expected = salted_hmac("flows.page-form", "tok_123", secret=secret, algorithm="sha256").hexdigest()
        assert csrf.page_form_token("tok_123") == expected
