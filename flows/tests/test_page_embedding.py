"""The hosted page as the snippet's modal (flows/embedding.py): framed only by the App's origins."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client

from flows.embedding import SCRIPT_HASH
from flows.models import Decision

pytestmark = pytest.mark.django_db

BUSINESS = "https://app.example.com"


@pytest.fixture
def path(demo_app, snippet_data) -> str:  # noqa: ANN001
    demo_app.allowed_origins = f"{BUSINESS}\nhttps://other.example.com"
    demo_app.save()
    answer = Client().post("/precancel", json.dumps(snippet_data()), content_type="application/json").json()
    return urlsplit(answer["url"]).path


def modal(path: str, origin: str = BUSINESS) -> str:
    return f"{path}?{urlencode({'bb_display': 'modal', 'bb_origin': origin})}"


def form_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_modal_page_may_be_framed_by_the_apps_origins_only(client, path):
    response = client.get(modal(path))
    policy = response["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", policy).group(1).split()
    assert ancestors == ["http://testserver", BUSINESS, "https://other.example.com"]
    assert "X-Frame-Options" not in response  # it cannot list origins; frame-ancestors governs
    assert f"script-src '{SCRIPT_HASH}'" in policy and "default-src 'none'" in policy
    html = response.content.decode()
    assert f'data-bb-parent="{BUSINESS}"' in html
    assert f'action="{path}?bb_display=modal&amp;bb_origin=https%3A%2F%2Fapp.example.com"' in html


@pytest.mark.parametrize("origin", ["https://evil.example.net", "https://app.example.com.evil.net", "",
                                    "https://app.example.com; frame-ancestors *"])
def test_an_origin_the_app_does_not_allow_gets_the_unframeable_page(client, path, origin):
    response = client.get(modal(path, origin))
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert "data-bb-parent" not in response.content.decode()


def test_a_stray_origin_in_the_apps_list_never_reaches_the_header(client, demo_app, path):
    demo_app.allowed_origins = f"{BUSINESS}\nhttps://x.example.com 'unsafe-inline'"
    demo_app.save()
    policy = client.get(modal(path))["Content-Security-Policy"]
    assert "unsafe-inline'" not in policy.split("frame-ancestors")[1]


def test_a_decision_in_the_modal_hands_the_signed_url_to_the_snippet(path):
    browser = Client(enforce_csrf_checks=True)  # and no cookie at all: a third-party frame's lot
    token = form_token(browser.get(modal(path)).content.decode())
    response = browser.post(modal(path), {"csrfmiddlewaretoken": token, "action": "nevermind"})
    assert response.status_code == 200
    assert "frame-ancestors http://testserver https://app.example.com" in response["Content-Security-Policy"]
    handed = json.loads(re.search(r'<script id="bb-decision" type="application/json">(.*?)</script>',
                                  response.content.decode()).group(1))
    decision = Decision.objects.get()
    assert handed == {"event": "session.nevermind", "url": decision.redirect_url}
    assert "bb_sig=" in decision.redirect_url
    assert f'href="{decision.redirect_url.replace("&", "&amp;")}" target="_top"' in response.content.decode()

    # Again (a double click): nothing new, the same hand-off; outside the modal, the same redirect.
    again = browser.post(modal(path), {"csrfmiddlewaretoken": token, "action": "nevermind"})
    assert decision.redirect_url.replace("&", "&amp;") in again.content.decode()
    assert Decision.objects.count() == 1
    plain = browser.post(path, {"csrfmiddlewaretoken": token, "action": "nevermind"})
    assert plain.status_code == 303 and plain["Location"] == decision.redirect_url
    # A Cancel after it, still in the modal: the earlier choice, framed, with one button that cancels.
    later = browser.post(modal(path), {"csrfmiddlewaretoken": token, "action": "cancel"})
    assert "frame-ancestors http://testserver https://app.example.com" in later["Content-Security-Policy"]
    assert later.content.decode().count('data-bb-action="cancel"') == 1
    assert Decision.objects.count() == 1


def test_each_step_of_the_modal_stays_framed(path):
    browser = Client(enforce_csrf_checks=True)
    token = form_token(browser.get(modal(path)).content.decode())
    offers = browser.post(modal(path), {"csrfmiddlewaretoken": token, "action": "continue", "reason": "too-expensive"})
    assert offers.status_code == 200 and "data-bb-offer-card" in offers.content.decode()
    assert BUSINESS in offers["Content-Security-Policy"]
    assert "bb_display=modal" in offers.content.decode()


def test_the_snippet_stays_under_5_kb_gzipped(client):
    import gzip

    source = client.get("/js/brightback.js").content
    assert b"brightback:decision" in source
    assert len(gzip.compress(source, compresslevel=9)) < 5 * 1024
