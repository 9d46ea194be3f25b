"""The headless API: a page described as data, a decision recorded once with the signed return URL."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from billing.models import BillingConnection
from flows import signing
from flows.models import CancelSession, Decision, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(client, demo_app, snippet_data) -> CancelSession:  # noqa: ANN001
    demo_app.allowed_origins = "https://app.example.com"
    demo_app.save()
    client.post("/precancel", json.dumps(snippet_data()), content_type="application/json")
    return CancelSession.objects.get()


def describe(client, session, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.get(f"/api/v1/pages/{session.token}", **extra)


def decide(client, session, body, **extra):  # noqa: ANN001, ANN003, ANN201
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(f"/api/v1/pages/{session.token}/decision", raw, content_type="application/json", **extra)


def test_a_page_is_described_as_the_hosted_page_shows_it(client, session):
    answer = describe(client, session).json()
    assert answer["session"] == {"id": session.public_id, "open": True, "language": "en",
                                 "expires_at": session.expires_at.isoformat()}
    assert answer["copy"]["nevermind_label"] == "Never mind, keep my subscription"
    codes = [reason["code"] for reason in answer["reasons"]]
    assert "too-expensive" in codes
    discount = next(offer for offer in answer["offers"] if offer["code"] == "discount-30")
    assert discount["accept_label"] and discount["terms"]["discount_percent"] == 30
    assert "coupon" not in discount["terms"]
    assert discount["terms_summary"].startswith("30% off")
    assert answer["cancel"]["timing"] is None and answer["decision"] is None
    assert not Decision.objects.exists()


def test_the_description_is_in_the_customers_language(client, demo_app, snippet_data):
    client.post("/precancel", json.dumps(snippet_data(context={"locale": "fr-FR"})), content_type="application/json")
    answer = describe(client, CancelSession.objects.get()).json()
    assert answer["session"]["language"] == "fr"
    assert answer["copy"]["reasons_prompt"] == "Pourquoi souhaitez-vous résilier\u00a0?"
    assert answer["cancel"]["label"] == "Résilier à la fin de la période de facturation"


def test_what_cancel_will_do_follows_the_billing_connection(client, session):
    BillingConnection.objects.create(app=session.app, provider="stripe",
                                     cancel_timing=BillingConnection.CancelTiming.PERIOD_END)
    cancel = describe(client, session).json()["cancel"]
    assert cancel["timing"] == "period_end"
    assert cancel["summary"] == "Your subscription ends at the end of the current billing period."


def test_a_cancel_is_recorded_once_and_answers_the_signed_return_url(client, session):
    response = decide(client, session, {"action": "cancel", "reason": "too-expensive", "feedback": "pricey"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["event"] == "session.canceled"
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer["redirect_url"]).query).items()}
    assert query["bb_event"] == "session.canceled" and query["bb_session"] == session.public_id
    assert query["bb_sig"] == signing.return_signature(secret=session.app.secret, event="session.canceled",
                                                       account_id=query["bb_account_id"],
                                                       session=session.public_id, ts=int(query["bb_ts"]))
    decision = Decision.objects.get()
    assert (decision.kind, decision.reason_code, decision.feedback) == ("cancel", "too-expensive", "pricey")

    again = decide(client, session, {"action": "nevermind"})
    assert again.status_code == 200 and again.json() == answer
    assert Decision.objects.count() == 1
    assert Event.objects.filter(type="session.canceled").count() == 1
    assert describe(client, session).json()["decision"] == answer


def test_accepting_an_offer_goes_to_its_return_url(client, session):
    answer = decide(client, session, {"action": "accept", "reason": "too-expensive", "offer": "discount-30"}).json()
    assert answer["event"] == "offer.accepted"
    assert Decision.objects.get().offer_code == "discount-30"


@pytest.mark.parametrize(("body", "message"), [
    ("{not json", "invalid json syntax"),
    ("[]", "request body must be a JSON object"),
    ({"action": "leave"}, "action must be one of nevermind, accept, cancel"),
    ({"action": "cancel", "reason": 5}, "reason must be a string"),
    ({"action": "cancel", "feedback": "x" * 5001}, "feedback is longer than 5000 characters"),
    ({"action": "cancel", "extra": 1}, "unknown field: extra"),
    ({"action": "accept"}, "offer is required to accept"),
    ({"action": "accept", "offer": "no-such-offer"}, "Offer 'no-such-offer' is not shown for this reason."),
    ({"action": "cancel", "reason": "no-such-reason"}, "Unknown reason 'no-such-reason'."),
])
def test_bad_input_is_a_clear_400_and_records_nothing(client, session, body, message):
    response = decide(client, session, body)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert not Decision.objects.exists()


def test_a_form_or_text_body_is_refused(client, session):
    response = client.post(f"/api/v1/pages/{session.token}/decision", {"action": "cancel"})
    assert response.status_code == 415
    response = client.post(f"/api/v1/pages/{session.token}/decision", '{"action": "cancel"}', content_type="text/plain")
    assert response.status_code == 415
    assert not Decision.objects.exists()


def test_an_unknown_token_is_a_404(client, db):
    assert client.get("/api/v1/pages/not-a-real-token-at-all-xx").status_code == 404
    response = client.post("/api/v1/pages/not-a-real-token-at-all-xx/decision", '{"action": "cancel"}',
                           content_type="application/json")
    assert response.status_code == 404 and response.json() == {"error": "no such page"}


def test_an_expired_page_is_a_410_and_records_nothing(client, session):
    CancelSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert describe(client, session).status_code == 410
    assert decide(client, session, {"action": "cancel"}).status_code == 410
    assert not Decision.objects.exists()


def test_cors_answers_the_apps_origins_only(client, session):
    ok = describe(client, session, HTTP_ORIGIN="https://app.example.com")
    assert ok["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in describe(client, session, HTTP_ORIGIN="https://evil.example.net")
    preflight = client.options(f"/api/v1/pages/{session.token}/decision", HTTP_ORIGIN="https://app.example.com",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    refused = client.options(f"/api/v1/pages/{session.token}/decision", HTTP_ORIGIN="https://evil.example.net",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in refused


def test_decisions_are_rate_limited_as_on_the_page(client, session, settings):
    settings.RATE_LIMIT_RULES = {**settings.RATE_LIMIT_RULES, "decision-ip": "2/d"}
    address = {"REMOTE_ADDR": "192.0.2.77"}
    for _ in range(2):
        assert decide(client, session, {"action": "leave"}, **address).status_code == 400
    limited = decide(client, session, {"action": "cancel"}, **address)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert limited.json()["error"].startswith("too many requests")
    assert not Decision.objects.exists()


def test_real_answers_match_the_served_schema(client, session):
    # schemathesis (tests/test_api_schema.py) fuzzes with tokens it makes up; these are a real page's.
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    def plain(schema: object) -> object:  # OpenAPI 3.0's "nullable" in JSON Schema's words
        if isinstance(schema, list):
            return [plain(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        schema = {key: plain(value) for key, value in schema.items()}
        if schema.pop("nullable", False):
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema

    def check(path: str, method: str, response) -> None:  # noqa: ANN001
        described = paths[path][method]["responses"][str(response.status_code)]["content"]["application/json"]
        jsonschema.validate(response.json(), plain(described["schema"]))

    check("/api/v1/pages/{token}", "get", describe(client, session))
    check("/api/v1/pages/{token}/decision", "post", decide(client, session, {"action": "leave"}))
    check("/api/v1/pages/{token}/decision", "post", decide(client, session, {"action": "cancel"}))
    check("/api/v1/pages/{token}", "get", describe(client, session))
