"""Stored secrets under key changes: a SECRET_KEY rotated without FIELD_ENCRYPTION_KEYS makes the service
say it cannot serve (503, /healthz naming `secrets`) instead of answering 500s while /healthz says ok;
`manage.py rotate_encryption_keys` moves every stored secret, wherever it lives, to the first key."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import AlertDelivery, AlertRule
from billing.models import BillingConnection
from brightback_site import secrets
from flows import selectors
from flows.models import App
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


@pytest.fixture(autouse=True)
def _fresh_verdicts():  # noqa: ANN202
    secrets.forget_state()
    yield
    secrets.forget_state()


def open_session(client, snippet_data) -> str:  # noqa: ANN001
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()["url"].rsplit("/", 1)[-1]


def test_a_rotated_secret_key_without_encryption_keys_answers_503_naming_secrets_not_500(
        client, demo_app, snippet_data, settings):
    settings.FIELD_ENCRYPTION_KEYS = []  # .env.example's old default: keys derived from SECRET_KEY
    App.objects.filter(pk=demo_app.pk).update(secret="written-under-the-old-secret-key")
    token = open_session(client, snippet_data)
    assert client.get("/healthz").json()["secrets"] == "ok"

    settings.SECRET_KEY = "a-new-secret-key-after-a-leak"
    selectors.forget_app_copies()  # a process started after the change holds no decrypted copy
    secrets.forget_state()

    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["secrets"] == "unreadable" and health.json()["database"] == "ok"

    precancel = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    assert precancel.status_code == 503, precancel.content
    assert precancel.json() == {"valid": False, "message": "temporarily unavailable: try again in a few minutes"}
    page = client.get(f"/c/{token}")
    assert page.status_code == 503
    assert "temporarily unavailable" in page.content.decode()


def test_healthz_reads_the_stored_secrets_once_per_period_not_on_every_probe(client, demo_app):
    assert client.get("/healthz").json()["secrets"] == "ok"
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
    assert len(queries) == 5  # the database's SELECT 1 per probe, nothing more


def every_kind_of_secret(app: App) -> dict[str, tuple]:
    """One stored value in every encrypted column the project has, written under the current keys."""
    App.objects.filter(pk=app.pk).update(secret="the-app-secret")
    endpoint = Endpoint.objects.create(app=app, url="https://hooks.example.com/in", secret="whsec_current",
                                       previous_secret="whsec_previous")
    connection_ = BillingConnection.objects.create(app=app, provider="stripe", test_api_key="sk_test_1234",
                                                   live_api_key="sk_live_5678")
    rule = AlertRule.objects.create(app=app, events=["session.canceled"], slack_webhook_url=SLACK)
    delivery = AlertDelivery.objects.create(app=app, rule=rule, kind=AlertDelivery.Kind.SLACK,
                                            event_type="session.canceled", data={}, occurred_at="2026-01-01T00:00Z",
                                            slack_webhook_url=SLACK)
    return {"flows.App.secret": (App, app.pk, "secret", "the-app-secret"),
            "webhooks.Endpoint.secret": (Endpoint, endpoint.pk, "secret", "whsec_current"),
            "webhooks.Endpoint.previous_secret": (Endpoint, endpoint.pk, "previous_secret", "whsec_previous"),
            "billing.BillingConnection.test_api_key": (BillingConnection, connection_.pk, "test_api_key",
                                                       "sk_test_1234"),
            "billing.BillingConnection.live_api_key": (BillingConnection, connection_.pk, "live_api_key",
                                                       "sk_live_5678"),
            "alerts.AlertRule.slack_webhook_url": (AlertRule, rule.pk, "slack_webhook_url", SLACK),
            "alerts.AlertDelivery.slack_webhook_url": (AlertDelivery, delivery.pk, "slack_webhook_url", SLACK)}


def raw(model, pk: int, field: str) -> str:  # noqa: ANN001
    column = model._meta.get_field(field).column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_rotate_encryption_keys_rewrites_every_stored_secret_under_the_first_key(demo_app, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    stored = every_kind_of_secret(demo_app)
    assert set(stored) == {f"{m._meta.label}.{f}" for m, f in secrets.encrypted_columns()}, "a secret is untested"
    before = {label: raw(model, pk, field) for label, (model, pk, field, _) in stored.items()}

    settings.FIELD_ENCRYPTION_KEYS = [new, old]  # the new key first, the old one still listed
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    for label in stored:
        assert f"{label}: 1 rewritten" in out.getvalue()

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key retired: everything still reads
    for label, (model, pk, field, plain) in stored.items():
        assert raw(model, pk, field) != before[label]
        assert Fernet(new.encode()).decrypt(raw(model, pk, field).encode()).decode() == plain, label
        assert model._base_manager.filter(pk=pk).values_list(field, flat=True).get() == plain, label
    secrets.forget_state()
    assert secrets.unreadable_columns() == []


def test_an_installation_without_encryption_keys_moves_to_them_with_rotate(demo_app, settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    App.objects.filter(pk=demo_app.pk).update(secret="under-the-derived-key")
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    assert App.objects.get(pk=demo_app.pk).secret == "under-the-derived-key"  # still reads meanwhile
    call_command("rotate_encryption_keys", stdout=io.StringIO())

    settings.SECRET_KEY = "rotated-afterwards"  # now SECRET_KEY may change
    assert App.objects.get(pk=demo_app.pk).secret == "under-the-derived-key"


def test_rotate_encryption_keys_reports_a_value_no_key_reads_and_fails(demo_app, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    App.objects.filter(pk=demo_app.pk).update(secret="lost")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match=rf"flows.App.secret: {demo_app.pk} cannot be decrypted"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
