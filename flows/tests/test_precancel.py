"""POST /precancel: Brightback-compatible answers and every bad input of DESIGN §2."""

from __future__ import annotations

import json
import time

import pytest

from flows import signing
from flows.models import App, CancelSession

pytestmark = pytest.mark.django_db


def post(client, body, **extra):  # noqa: ANN001, ANN003, ANN201
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/precancel", data=raw, content_type="application/json", **extra)


def test_valid_data_opens_a_session_and_answers_the_url_under_both_keys(client, demo_app, snippet_data):
    response = post(client, snippet_data())
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["url"] == body["message"]
    assert body["url"].startswith("http://testserver/c/")
    session = CancelSession.objects.get()
    assert body["url"].endswith(session.token)
    assert session.email == "jane@example.com"
    assert session.account_internal_id == "acct_42"
    assert session.data["custom"] == {"seats": 3, "team": {"name": "Blue"}}
    assert session.is_open


def test_session_tokens_are_long_and_distinct(client, demo_app, snippet_data):
    urls = {post(client, snippet_data()).json()["url"] for _ in range(5)}
    assert len(urls) == 5
    for session in CancelSession.objects.all():
        assert len(session.token) >= 22  # 128 bits in URL-safe base64 at the very least


def test_text_plain_body_is_accepted_like_brightback_js_sent_it(client, demo_app, snippet_data):
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="text/plain")
    assert response.status_code == 200


def test_a_subscription_id_alone_identifies_the_customer(client, demo_app):
    # Brightback required an email unless a subscription_id was given.
    body = {"app_id": "demo", "subscription_id": "sub_only", "save_return_url": "http://127.0.0.1/account"}
    response = client.post("/precancel", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.json()
    session = CancelSession.objects.get()
    assert (session.subscription_id, session.email, session.account_internal_id) == ("sub_only", "", "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"app_id": "demo", "subscription_id": ""}, "valid email, account.internal_id or subscription_id is required"),
        ({"app_id": "demo", "subscription_id": ["sub_1"]}, "subscription_id must be a string"),
    ],
)
def test_an_empty_or_malformed_subscription_id_does_not_identify_anyone(client, demo_app, body, message):
    response = client.post("/precancel", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"valid": False, "message": message}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid json syntax"),
        ("", "invalid json syntax"),
        ("[1, 2]", "request body must be a JSON object"),
        ({"email": "a@b.co"}, "valid app_id is required"),
        ({"app_id": 42, "email": "a@b.co"}, "valid app_id is required"),
        ({"app_id": "demo"}, "valid email, account.internal_id or subscription_id is required"),
        ({"app_id": "demo", "email": ""}, "valid email, account.internal_id or subscription_id is required"),
        ({"app_id": "demo", "email": "not-an-email"}, "email is not a valid email address"),
        ({"app_id": "demo", "email": ["a@b.co"]}, "email must be a string"),
        ({"app_id": "demo", "email": "a@b.co", "account": "acct"}, "account must be an object"),
        ({"app_id": "demo", "email": "a@b.co", "account": {"value": "lots"}}, "account.value must be a number"),
        ({"app_id": "demo", "email": "a@b.co", "custom": {"tags": ["a"]}}, "custom.tags: arrays are not supported"),
        ({"app_id": "demo", "email": "a@b.co", "custom": [1]}, "custom must be an object"),
        ({"app_id": "demo", "email": "a@b.co", "save_return_url": "javascript:alert(1)"},
         "save_return_url must be an absolute http(s) URL"),
        ({"app_id": "demo", "email": "a@b.co", "offer_2_url": "/relative"},
         "offer_2_url must be an absolute http(s) URL"),
        ({"app_id": "demo", "email": "a@b.co", "auth": "abc"}, "auth must be an object with expires and hash"),
        ({"app_id": "demo", "email": "a@b.co", "account": {"created_at": "yesterday"}},
         "account.created_at must be an ISO 8601 date"),
        # "²".isdigit() is true and int("²") raises: a digit only to str.
        ({"app_id": "demo", "email": "a@b.co", "auth": {"expires": "\u00b2", "hash": "ab"}},
         "auth must be an object with expires (unix seconds) and hash (hex)"),
        # Python refuses to read integers of more than 4300 digits from text.
        ({"app_id": "demo", "email": "a@b.co", "auth": {"expires": "9" * 5000, "hash": "ab"}},
         "auth must be an object with expires (unix seconds) and hash (hex)"),
    ],
)
def test_malformed_bodies_get_a_400_naming_the_problem(client, demo_app, body, message):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json() == {"valid": False, "message": message}
    assert CancelSession.objects.count() == 0


def test_malformed_body_is_a_400_even_for_an_unknown_app(client, db):
    response = post(client, {"app_id": "nope", "email": "a@b.co", "custom": {"x": []}})
    assert response.status_code == 400


def test_oversize_body_is_refused(client, demo_app, snippet_data):
    body = snippet_data(custom={"blob": "x" * 1900, **{f"k{i}": "y" * 1900 for i in range(40)}})
    response = post(client, body)
    assert response.status_code == 400
    assert "too large" in response.json()["message"]
    assert CancelSession.objects.count() == 0


def test_deeply_nested_custom_data_is_refused(client, demo_app, snippet_data):
    nested: dict = {"v": 1}
    for _ in range(10):
        nested = {"n": nested}
    response = post(client, snippet_data(custom=nested))
    assert response.status_code == 400
    assert "nested" in response.json()["message"]


def test_unknown_app_is_a_404_in_brightback_words(client, db, snippet_data):
    response = post(client, snippet_data(app_id="nope"))
    assert response.status_code == 404
    assert response.json() == {"valid": False, "message": "No such app:nope"}


def test_return_url_off_the_allowed_hosts_is_refused(client, demo_app, snippet_data):
    response = post(client, snippet_data(cancel_confirmation_url="https://evil.example.net/phish"))
    assert response.status_code == 400
    assert response.json()["message"] == "cancel_confirmation_url is not on this app's allowed return-URL hosts"
    assert CancelSession.objects.count() == 0


def test_wildcard_host_allows_subdomains_only(demo_app):
    demo_app.allowed_return_hosts = "*.example.com"
    assert demo_app.allows_return_url("https://app.example.com/x")
    assert not demo_app.allows_return_url("https://example.com.evil.net/x")
    assert not demo_app.allows_return_url("https://evilexample.com/x")


def test_app_without_an_active_flow_says_so(client, demo_app, snippet_data):
    demo_app.flows.update(is_active=False)
    response = post(client, snippet_data())
    assert response.status_code == 409
    assert response.json()["message"] == "No active flow for app:demo"


# --- signed embeds (live mode) -------------------------------------------------------------------

def signed(app: App, data: dict, *, expires: int | None = None, secret: str | None = None) -> dict:
    expires = expires or int(time.time()) + 600
    digest = signing.embed_hash(secret=secret or app.secret, app_id=app.app_id,
                                internal_id=data["account"]["internal_id"], expires=expires,
                                subscription_id=data.get("subscription_id", ""),
                                billing_id=data["account"].get("billing_id", ""), email=data.get("email", ""))
    return {**data, "auth": {"expires": expires, "hash": digest}}


SIX = '"{app_id}:{account.internal_id}:{auth.expires}:{subscription_id}:{account.billing_id}:{email}"'
MISMATCH = f"auth.hash does not match: it must be the HMAC-SHA256 of {SIX}"


@pytest.fixture
def live_app(demo_app):  # noqa: ANN001, ANN201
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    return demo_app


def test_live_app_accepts_a_correctly_signed_embed(client, live_app, snippet_data):
    assert post(client, signed(live_app, snippet_data())).status_code == 200


def test_live_app_accepts_expires_sent_as_a_string(client, live_app, snippet_data):
    data = signed(live_app, snippet_data())
    data["auth"]["expires"] = str(data["auth"]["expires"])
    assert post(client, data).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda app, d: d, f"auth is required for a live-mode app: auth.hash must be the HMAC-SHA256 of {SIX}"),
        (lambda app, d: signed(app, d, secret="sk_wrong"), MISMATCH),
        (lambda app, d: signed(app, d, expires=int(time.time()) - 10), "auth has expired"),
        (lambda app, d: signed(app, d, expires=int(time.time()) + 3 * 86400),
         "auth.expires is more than 24 hours ahead"),
        (lambda app, d: {**signed(app, d), "account": {**d["account"], "internal_id": "someone_else"}},
         MISMATCH),
    ],
)
def test_live_app_refuses_missing_forged_or_expired_auth(client, live_app, snippet_data, mutate, message):
    response = post(client, mutate(live_app, snippet_data()))
    assert response.status_code == 403
    assert response.json() == {"valid": False, "message": message}
    assert CancelSession.objects.count() == 0


def test_test_mode_app_still_checks_an_auth_block_it_is_given(client, demo_app, snippet_data):
    response = post(client, signed(demo_app, snippet_data(), secret="sk_wrong"))
    assert response.status_code == 403


def test_auth_is_not_stored_with_the_session(client, live_app, snippet_data):
    post(client, signed(live_app, snippet_data()))
    assert "auth" not in CancelSession.objects.get().data


# --- CORS ----------------------------------------------------------------------------------------

def test_allowed_origin_gets_credentialed_cors_headers(client, demo_app, snippet_data):
    demo_app.allowed_origins = "https://app.example.com"
    demo_app.save()
    response = post(client, snippet_data(), HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response["Access-Control-Allow-Credentials"] == "true"


def test_foreign_origin_is_refused_and_opens_nothing(client, demo_app, snippet_data):
    response = post(client, snippet_data(), HTTP_ORIGIN="https://evil.example.net")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert CancelSession.objects.count() == 0


def test_preflight_answers_only_origins_some_app_allows(client, demo_app):
    demo_app.allowed_origins = "https://app.example.com"
    demo_app.save()
    ok = client.options("/precancel", HTTP_ORIGIN="https://app.example.com",
                        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert ok["Access-Control-Allow-Origin"] == "https://app.example.com"
    refused = client.options("/precancel", HTTP_ORIGIN="https://evil.example.net",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in refused


def test_get_is_not_allowed(client, db):
    response = client.get("/precancel")
    assert response.status_code == 405
    assert response.json()["valid"] is False


# --- text the database cannot store, numbers JSON does not have ---------------------------------

@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"app_id":"demo","email":"a@b.co","custom":{"x":NaN}}', "invalid json syntax"),
        ('{"app_id":"demo","email":"a@b.co","custom":{"x":Infinity}}', "invalid json syntax"),
        ('{"app_id":"demo","email":"a@b.co","account":{"value":1e400}}', "invalid json syntax"),
        ('{"app_id":"demo","email":"a@b.co","first_name":"a\\u0000b"}', "first_name contains a NUL character"),
        ('{"app_id":"demo","email":"a@b.co","custom":{"k\\u0000":"v"}}', "custom key contains a NUL character"),
        ('{"app_id":"demo","email":"a@b.co","first_name":"\\ud800"}', "first_name is not valid Unicode text"),
        ('{"app_id":"demo\\u0000","email":"a@b.co"}', "valid app_id is required"),
        ("[" * 15000 + "]" * 15000, "invalid json syntax"),
        # Valid for Django's email validator (up to 320 characters), too long for the session's column.
        ('{"app_id":"demo","email":"0@' + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + '"}',
         "email is longer than 254 characters"),
        ('{"app_id":"demo","email":"a@b.co","subscription_id":"' + "s" * 256 + '"}',
         "subscription_id is longer than 255 characters"),
        ('{"app_id":"demo","account":{"internal_id":"' + "i" * 256 + '"}}',
         "account.internal_id is longer than 255 characters"),
    ],
)
def test_values_the_database_cannot_store_are_a_400_not_a_500(client, demo_app, raw, message):
    response = post(client, raw)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert CancelSession.objects.count() == 0


# --- inputs that once answered 500 --------------------------------------------------------------

OUT_OF_RANGE = "account.value is out of range (at most 100000000000 either way)"


@pytest.mark.parametrize(
    ("account", "message"),
    [
        ({"internal_id": "acct_42", "value": "nan"}, "account.value must be a finite number"),
        ({"internal_id": "acct_42", "value": "NaN"}, "account.value must be a finite number"),
        ({"internal_id": "acct_42", "value": "1e999"}, "account.value must be a finite number"),
        ({"internal_id": "acct_42", "value": "-inf"}, "account.value must be a finite number"),
        ({"internal_id": "acct_42", "value": 10**13}, OUT_OF_RANGE),
        ({"internal_id": "acct_42", "value": 10**400}, OUT_OF_RANGE),
        ({"internal_id": "acct_42", "value": "-1e12"}, OUT_OF_RANGE),
        ({"internal_id": "acct_42", "k\x00": "v"}, "account key contains a NUL character"),
        ({"internal_id": "acct_42", "\ud800": "v"}, "account key is not valid Unicode text"),
        ({"internal_id": "acct_42", "k" * 201: "v"}, "account has a key longer than 200 characters"),
    ],
)
def test_account_values_the_session_cannot_hold_are_a_400_not_a_500(client, demo_app, snippet_data, account,
                                                                     message):
    raw = json.dumps(snippet_data(account=account))
    response = post(client, raw)
    assert response.status_code == 400, response.content
    assert response.json() == {"valid": False, "message": message}
    assert CancelSession.objects.count() == 0


def test_the_largest_account_value_allowed_is_kept(client, demo_app, snippet_data):
    response = post(client, snippet_data(account={"internal_id": "acct_42", "value": 10**11, "plan_term": "week"}))
    assert response.status_code == 200
    assert CancelSession.objects.get().account["value"] == 10**11


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\uff0f@127.0.0.1/account",  # FULLWIDTH SOLIDUS: a "/" once normalised
        "http://evil.example\uff20127.0.0.1/account",  # FULLWIDTH COMMERCIAL AT: an "@" once normalised
        "http://127.0.0.1\uff0fevil.example/account",
        "http://b\u00fccher.example/account",  # an international name must be given in its xn-- form
    ],
)
def test_a_return_url_whose_host_is_not_plain_ascii_is_a_400(client, demo_app, snippet_data, url):
    for field in ("save_return_url", "cancel_confirmation_url", "offer_1_url"):
        response = post(client, snippet_data(**{field: url}))
        assert response.status_code == 400, response.content
        assert response.json() == {
            "valid": False,
            "message": f"{field} must be a plain http(s) URL whose host is ASCII "
                       "(write an international domain name in its xn-- form)"}
    assert CancelSession.objects.count() == 0


def test_an_offer_url_key_with_a_trailing_newline_is_not_an_offer_url(client, demo_app, snippet_data):
    body = snippet_data()
    body["offer_1_url\n"] = "http://localhost/offer-applied"
    assert post(client, body).status_code == 200
    assert "offer_1_url\n" not in CancelSession.objects.get().data

