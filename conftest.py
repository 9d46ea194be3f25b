"""Shared fixtures. Tests use real PostgreSQL and Redis when `make test` found them (see
brightback_site/probe.py); tests that need one skip with the reason where it is absent, except in CI,
where a missing service is a failure rather than a silent skip."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from django.core.management import call_command

IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def prepared_runs(sql: str) -> list[tuple[bool, int]]:
    """How the connection's statements with this text (as Django's query log shows it) were prepared (by SQL's
    PREPARE, or by the driver) and how often each has run: one row per prepared statement."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT from_sql, generic_plans + custom_plans FROM pg_prepared_statements "
                       "WHERE statement = %s", [sql])
        return list(cursor.fetchall())


def worker_database_url() -> str:
    """The database this test runs on, as a DATABASE_URL for a worker process started by the test."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def demo_app(db):  # noqa: ANN001, ANN201
    from flows.models import App

    call_command("demo_setup", stdout=io.StringIO())
    return App.objects.get(app_id="demo")


@pytest.fixture
def snippet_data():  # noqa: ANN201
    def make(**overrides) -> dict:  # noqa: ANN003
        data = {
            "app_id": "demo",
            "email": "jane@example.com",
            "subscription_id": "sub_1",
            "save_return_url": "http://127.0.0.1/account?tab=billing",
            "cancel_confirmation_url": "http://127.0.0.1/canceled",
            "offer_1_url": "http://localhost/offer-applied",
            "account": {"internal_id": "acct_42", "plan": "pro", "value": 49},
            "custom": {"seats": 3, "team": {"name": "Blue"}},
        }
        data.update(overrides)
        return data

    return make


@pytest.fixture
def smtp(settings):  # noqa: ANN001, ANN201
    """A real SMTP server on 127.0.0.1 (aiosmtpd, alerts/testing.py); Django's SMTP backend is pointed at it."""
    from alerts.testing import SmtpServer

    with SmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
        settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
        settings.EMAIL_TIMEOUT = 5
        yield server


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):  # noqa: ANN001, ANN202
    """Tests post many times from one address (the hypothesis tests hundreds): the limits stay on, far
    above what a test sends, with counters of their own. tests/test_rate_limits.py sets real ones."""
    settings.RATE_LIMIT_RULES = {scope: "1000000/m" for scope in settings.RATE_LIMIT_RULES}
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{uuid.uuid4().hex}:"


@pytest.fixture(autouse=True)
def _no_app_copies_across_tests():  # noqa: ANN202
    """Each test makes its own "demo" App: no process-memory copy of another test's may serve it."""
    from brightback_site import outbox, outbox_runs
    from flows import page_cache, selectors

    selectors.forget_app_copies()
    page_cache.forget()
    outbox.forget_queue_heads()  # how far the workers of another test got is not this test's business
    outbox_runs.forget_wake_gates()  # nor a wake-up another test left in a queue
    yield
    selectors.forget_app_copies()
    page_cache.forget()
