"""Each attack on the cancel flow, refused: one test each. Real parts throughout (the test client,
PostgreSQL or SQLite, a real HTTP receiver for webhooks); the one mock is named where it is used."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import time
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from flows import signing
from flows.models import App, CancelSession, Decision, Event
from webhooks import endpoints as webhook_endpoints
from webhooks import services as webhook_services
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.testing import Receiver

pytestmark = pytest.mark.django_db

XSS = '<script>alert("bb")</script><img src=x onerror=alert(1)>'


def precancel(client, body: dict | str, **extra):  # noqa: ANN001, ANN003, ANN201
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post("/precancel", data=raw, content_type="application/json", **extra)


@pytest.fixture
def live_app(demo_app) -> App:
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    return demo_app


def signed(app: App, data: dict, *, secret: str | None = None, app_id: str | None = None,
           internal_id: str = "acct_42", expires: int | None = None) -> dict:
    expires = int(time.time()) + 600 if expires is None else expires
    digest = signing.embed_hash(secret=secret or app.secret, app_id=app_id or app.app_id,
                                internal_id=internal_id, expires=expires,
                                subscription_id=data.get("subscription_id", ""),
                                billing_id=data.get("account", {}).get("billing_id", ""), email=data.get("email", ""))
    return {**data, "auth": {"expires": expires, "hash": digest}}


def hmac_hex(secret: str, message: str) -> str:
    """What the business's server computes (README, "Live mode: signing the embed"), written out here
    rather than through flows.signing, so these tests hold the code to the documented contract."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


COVERS_ALL = '"{app_id}:{account.internal_id}:{auth.expires}:{subscription_id}:{account.billing_id}:{email}"'


def test_a_signature_for_ones_own_account_cannot_name_another_customers_subscription(client, live_app,
                                                                                    snippet_data):
    # The attacker's own page signs their account as the three-part string covered; the body they post
    # names the victim's subscription and billing customer, which billing would act on.
    expires = int(time.time()) + 600
    auth = {"expires": expires, "hash": hmac_hex(live_app.secret, f"demo:acct_attacker:{expires}")}
    body = snippet_data(email="attacker@example.com", subscription_id="sub_VICTIM",
                        account={"internal_id": "acct_attacker", "billing_id": "cus_VICTIM"}, auth=auth)
    response = precancel(client, body)
    assert response.status_code == 403
    assert response.json()["valid"] is False
    assert COVERS_ALL in response.json()["message"]
    assert not CancelSession.objects.exists()
    assert not Event.objects.exists()


def test_a_signature_covering_subscription_billing_id_and_email_is_accepted(client, live_app, snippet_data):
    expires = int(time.time()) + 600
    message = f"demo:acct_42:{expires}:sub_1:cus_1:jane@example.com"
    body = snippet_data(email="jane@example.com", subscription_id="sub_1",
                        account={"internal_id": "acct_42", "billing_id": "cus_1"},
                        auth={"expires": expires, "hash": hmac_hex(live_app.secret, message)})
    assert precancel(client, body).status_code == 200
    session = CancelSession.objects.get()
    assert (session.subscription_id, session.account["billing_id"], session.email) == ("sub_1", "cus_1",
                                                                                       "jane@example.com")


def test_an_absent_billing_field_is_signed_as_the_empty_string(client, live_app, snippet_data):
    expires = int(time.time()) + 600
    body = {"app_id": "demo", "subscription_id": "sub_1", "account": {"internal_id": "acct_42"},
            "auth": {"expires": expires, "hash": hmac_hex(live_app.secret, f"demo:acct_42:{expires}:sub_1::")}}
    assert precancel(client, body).status_code == 200


def test_data_without_billing_fields_keeps_the_three_part_signature(client, live_app):
    expires = int(time.time()) + 600
    body = {"app_id": "demo", "account": {"internal_id": "acct_42"},
            "auth": {"expires": expires, "hash": hmac_hex(live_app.secret, f"demo:acct_42:{expires}")}}
    assert precancel(client, body).status_code == 200
    body["auth"]["hash"] = hmac_hex(live_app.secret, f"demo:acct_42:{expires}:::")
    refused = precancel(client, body)
    assert refused.status_code == 403
    assert '"{app_id}:{account.internal_id}:{auth.expires}"' in refused.json()["message"]


@pytest.mark.parametrize(
    ("field", "tamper"),
    [
        ("subscription_id", lambda body: {**body, "subscription_id": "sub_VICTIM"}),
        ("account.billing_id", lambda body: {**body, "account": {**body["account"], "billing_id": "cus_VICTIM"}}),
        ("email", lambda body: {**body, "email": "victim@example.com"}),
        # Adding a field the page did not sign is tampering too.
        ("subscription_id", lambda body: {k: v for k, v in body.items() if k != "subscription_id"}),
    ],
)
def test_tampering_with_a_signed_billing_field_is_refused(client, live_app, snippet_data, field, tamper):
    expires = int(time.time()) + 600
    message = f"demo:acct_42:{expires}:sub_1:cus_1:jane@example.com"
    body = snippet_data(email="jane@example.com", subscription_id="sub_1",
                        account={"internal_id": "acct_42", "billing_id": "cus_1"},
                        auth={"expires": expires, "hash": hmac_hex(live_app.secret, message)})
    response = precancel(client, tamper(body))
    assert response.status_code == 403
    assert response.json()["message"].startswith("auth.hash does not match")
    assert COVERS_ALL in response.json()["message"]
    assert not CancelSession.objects.exists()


def test_unsigned_subscription_id_is_refused_in_live_mode_naming_what_to_sign(client, live_app, snippet_data):
    response = precancel(client, snippet_data())
    assert response.status_code == 403
    assert response.json()["message"].startswith("auth is required for a live-mode app")
    assert COVERS_ALL in response.json()["message"]
    assert not CancelSession.objects.exists()


def test_a_test_mode_app_checks_the_billing_fields_of_an_auth_block_it_is_given(client, demo_app, snippet_data):
    expires = int(time.time()) + 600
    three_part = {"expires": expires, "hash": hmac_hex(demo_app.secret, f"demo:acct_42:{expires}")}
    response = precancel(client, snippet_data(auth=three_part))
    assert response.status_code == 403
    assert COVERS_ALL in response.json()["message"]
    # Unsigned data is still welcome in test mode.
    assert precancel(client, snippet_data()).status_code == 200


def test_forged_auth_is_refused(client, live_app, snippet_data):
    response = precancel(client, signed(live_app, snippet_data(), secret="not-the-app-secret"))
    assert response.status_code == 403
    assert response.json()["valid"] is False
    assert response.json()["message"].startswith("auth.hash does not match")
    assert not CancelSession.objects.exists()


def test_expired_auth_is_refused(client, live_app, snippet_data):
    response = precancel(client, signed(live_app, snippet_data(), expires=int(time.time()) - 1))
    assert response.status_code == 403
    assert response.json()["message"] == "auth has expired"
    assert not CancelSession.objects.exists()


def test_auth_replayed_for_another_customer_is_refused(client, live_app, snippet_data):
    # A customer copies the signed block from their own page and posts it with someone else's account.
    mine = signed(live_app, snippet_data())
    theirs = {**snippet_data(account={"internal_id": "acct_someone_else"}), "auth": mine["auth"]}
    assert precancel(client, theirs).status_code == 403
    assert precancel(client, mine).status_code == 200  # the owner's page still works (reloads re-post)
    assert list(CancelSession.objects.values_list("account_internal_id", flat=True)) == ["acct_42"]


def test_auth_signed_for_one_app_is_refused_by_another(client, live_app, snippet_data):
    other = App.objects.create(app_id="other", name="Other", mode=App.Mode.LIVE,
                               allowed_return_hosts=live_app.allowed_return_hosts)
    # Signed correctly with the first App's secret, presented to the second.
    body = signed(live_app, snippet_data(app_id="other"), app_id="other")
    response = precancel(client, body)
    assert response.status_code == 403
    assert not CancelSession.objects.filter(app=other).exists()


def test_a_guessed_page_token_reveals_nothing_and_records_nothing(client, demo_app, snippet_data):
    assert precancel(client, snippet_data()).status_code == 200
    guess = secrets.token_urlsafe(32)
    page = client.get(f"/c/{guess}")
    assert page.status_code == 404
    assert "jane@example.com" not in page.content.decode()
    assert client.post(f"/c/{guess}", {"action": "cancel"}).status_code == 404
    assert client.get("/c/../admin/").status_code == 404
    assert not Decision.objects.exists()


@pytest.mark.parametrize("field", ["save_return_url", "cancel_confirmation_url", "offer_1_url", "offer_2_url"])
@pytest.mark.parametrize("url", ["https://evil.example/phish", "javascript:alert(1)", "//evil.example/x",
                                 "http://127.0.0.1.evil.example/", "https://evil.example\\@127.0.0.1/"])
def test_no_url_field_opens_a_redirect_to_a_host_the_app_does_not_allow(client, demo_app, snippet_data, field, url):
    response = precancel(client, snippet_data(**{field: url}))
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert not CancelSession.objects.exists()


def test_a_decision_without_the_csrf_token_is_refused(demo_app, snippet_data):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    url = precancel(browser, snippet_data()).json()["url"]
    path = urlsplit(url).path
    assert browser.get(path).status_code == 200  # the page sets the CSRF cookie
    response = browser.post(path, {"action": "cancel", "reason": "too-expensive"})
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_script_in_every_snippet_field_is_inert_on_the_page_in_the_admin_and_in_the_webhook(
        client, admin_client, demo_app, snippet_data, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    fields = {name: XSS for name in ("first_name", "last_name", "full_name", "subscription_id")}
    body = snippet_data(**fields, account={"internal_id": XSS, "company_name": XSS, "plan": XSS},
                        custom={"note": XSS, XSS: {"deep": XSS}},
                        context={"locale": "en", "user_agent": XSS, "referrer": XSS})
    with Receiver() as receiver:
        endpoint = webhook_endpoints.endpoint_create(app=demo_app, url=receiver.url)
        receiver.secrets.append(endpoint.secret)
        path = urlsplit(precancel(client, body).json()["url"]).path
        for html in (client.get(path).content.decode(),
                     client.post(path, {"action": "continue", "reason": "too-expensive", "feedback": XSS}
                                 ).content.decode()):
            assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert" in html  # the feedback, shown back escaped
        client.post(path, {"action": "cancel", "reason": "too-expensive", "feedback": XSS})
        session = CancelSession.objects.get()
        admin_html = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
        assert "<script>alert" not in admin_html and "<img src=x" not in admin_html
        assert "&lt;script&gt;alert" in admin_html

        delivery = Delivery.objects.get(endpoint=endpoint)
        webhook_services.delivery_attempt(delivery_id=delivery.pk)
        (got,) = receiver.snapshot()
    # The webhook carries the text as JSON data, exactly as sent, for the receiver to escape where it shows it.
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"].startswith("application/json")
    data = json.loads(got.body)["data"]
    assert data["custom"] == {"note": XSS, XSS: {"deep": XSS}}
    assert data["feedback"] == XSS and data["account"]["company_name"] == XSS


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data",
                                 "http://10.0.0.1/hook", "http://[::1]/hook", "http://localhost/hook",
                                 "http://0x7f000001/hook"])
def test_webhook_urls_inside_our_network_are_refused(demo_app, settings, url):
    from django.core.exceptions import ValidationError

    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError):
        webhook_endpoints.endpoint_create(app=demo_app, url=url)


def test_dns_rebinding_to_loopback_after_the_endpoint_was_saved_is_refused_when_sending(
        demo_app, snippet_data, settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with Receiver() as receiver:
        port = urlsplit(receiver.url).port
        # Mocked: no DNS server we control runs here. At save time the name answers a public address...
        real_getaddrinfo = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))])
        endpoint = webhook_endpoints.endpoint_create(app=demo_app, url=f"http://localhost:{port}/hook")
        # ...then it is rebound: "localhost" really resolves to 127.0.0.1 when the worker connects.
        monkeypatch.setattr(socket, "getaddrinfo", real_getaddrinfo)
        from flows import services as flow_services
        from flows.snippet_data import clean_snippet_data

        session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data()))
        flow_services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
        delivery = Delivery.objects.get(endpoint=endpoint)
        webhook_services.delivery_attempt(delivery_id=delivery.pk)
        assert receiver.snapshot() == []
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error.startswith("refused: 127.0.0.1")
    assert Event.objects.count() == 1


def test_an_oversize_body_is_refused_before_it_is_parsed(client, demo_app, snippet_data, settings):
    body = json.dumps(snippet_data(custom={"blob": "x" * 1900, **{f"k{i}": "y" * 1900 for i in range(40)}}))
    assert len(body) > settings.PRECANCEL_MAX_BYTES
    response = precancel(client, body)
    assert response.status_code == 400
    assert "too large" in response.json()["message"]
    assert not CancelSession.objects.exists()


def test_a_deeply_nested_body_is_refused(client, demo_app, snippet_data):
    nested: dict = {"leaf": "x"}
    for _ in range(50):
        nested = {"n": nested}
    response = precancel(client, snippet_data(custom=nested))
    assert response.status_code == 400
    assert response.json()["valid"] is False
    assert not CancelSession.objects.exists()
    # Nesting past the JSON parser's own recursion limit is a 400 too, not a crash.
    assert precancel(client, '{"a":' * 100_000 + "1" + "}" * 100_000).status_code == 400


@pytest.mark.parametrize("path", ["/demo/", "/healthz", "/js/brightback.js", "/admin/login/",
                                  "/c/unknown-token-xyz1234"])
def test_every_page_carries_the_security_headers(client, db, path):
    response = client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_the_hosted_page_keeps_its_strict_content_security_policy(client, demo_app, snippet_data):
    path = urlsplit(precancel(client, snippet_data()).json()["url"]).path
    policy = client.get(path)["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy  # no script at all may run
