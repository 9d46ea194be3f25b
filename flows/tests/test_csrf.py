"""The hosted page's CSRF token (flows/csrf.py) is Django's own in all but how it is drawn."""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, _unmask_cipher_token
from django.test import Client

from flows import csrf
from flows.models import Decision

pytestmark = pytest.mark.django_db


def open_page(browser: Client, snippet_data) -> tuple[str, str]:  # noqa: ANN001
    answer = browser.post("/precancel", json.dumps(snippet_data()), content_type="application/json").json()
    path = urlsplit(answer["url"]).path
    page = browser.get(path)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return path, token


def test_django_sets_the_cookie_and_accepts_the_token(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    path, token = open_page(browser, snippet_data)
    secret = browser.cookies["csrftoken"].value
    assert len(token) == 64 and _unmask_cipher_token(token) == secret

    response = browser.post(path, {"csrfmiddlewaretoken": token, "action": "cancel", "reason": "too-expensive"})
    assert response.status_code == 303
    assert Decision.objects.get().kind == "cancel"


def test_a_returning_visitor_keeps_the_secret_and_gets_a_new_mask(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    _, first = open_page(browser, snippet_data)
    secret = browser.cookies["csrftoken"].value
    _, second = open_page(browser, snippet_data)
    assert browser.cookies["csrftoken"].value == secret
    assert first != second and _unmask_cipher_token(first) == _unmask_cipher_token(second) == secret


def test_a_token_for_another_secret_is_refused(demo_app, snippet_data) -> None:  # noqa: ANN001
    browser = Client(enforce_csrf_checks=True)
    path, _ = open_page(browser, snippet_data)
    response = browser.post(path, {"csrfmiddlewaretoken": csrf.random_chars(64), "action": "cancel"})
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_every_character_is_equally_likely(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every byte value once: the 248 below the cut pick each of the 62 characters exactly four times,
    # the 8 above it (which would favour the first 8 characters) are thrown away.
    monkeypatch.setattr(csrf.os, "urandom", lambda n: bytes(range(256)))
    drawn = csrf.random_chars(248)
    assert Counter(drawn) == {char: 4 for char in CSRF_ALLOWED_CHARS}
