"""SESSION_RETENTION_DAYS: beat scrubs personal data from older sessions each night, keeping the counts."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from billing.models import BillingAction, BillingConnection
from flows import services
from flows.models import App, CancelSession, Decision, Event
from privacy import services as privacy
from reports import services as reports
from reports.models import DailyStat

pytestmark = pytest.mark.django_db


def aged(session: CancelSession, days: int) -> CancelSession:
    CancelSession.objects.filter(pk=session.pk).update(created_at=timezone.now() - timedelta(days=days))
    return CancelSession.objects.get(pk=session.pk)


def test_sessions_older_than_the_retention_period_lose_their_personal_data(demo_app: App, snippet_data, settings):  # noqa: ANN001
    settings.SESSION_RETENTION_DAYS = 365
    old = services.session_start(app=demo_app, data=snippet_data(email="old@example.com"))
    services.decision_record(session=old, kind="cancel", reason_code="too-expensive", feedback="old words")
    old = aged(old, 400)
    recent = aged(services.session_start(app=demo_app, data=snippet_data(email="new@example.com")), 300)
    reports.rollups_refresh_all()
    counted = list(DailyStat.objects.values_list("day", "sessions", "canceled").order_by("day"))

    assert privacy.sessions_scrub_expired(batch=1) == 1

    old.refresh_from_db()
    assert old.erased_at is not None and old.email == "" and old.account_internal_id.startswith("erased-")
    assert Decision.objects.get(session=old).feedback == ""
    assert "old@example.com" not in str(Event.objects.get(session=old).data)
    recent.refresh_from_db()
    assert recent.email == "new@example.com" and recent.erased_at is None
    reports.rollups_refresh_all()
    assert list(DailyStat.objects.values_list("day", "sessions", "canceled").order_by("day")) == counted
    assert privacy.sessions_scrub_expired() == 0  # idempotent: nothing is looked at twice


def test_retention_zero_keeps_personal_data(demo_app: App, snippet_data, settings):  # noqa: ANN001
    settings.SESSION_RETENTION_DAYS = 0
    old = aged(services.session_start(app=demo_app, data=snippet_data()), 4000)
    assert privacy.sessions_scrub_expired() == 0
    assert CancelSession.objects.get(pk=old.pk).email == "jane@example.com"


def test_retention_works_through_batches_and_leaves_busy_sessions_for_a_later_night(demo_app: App, snippet_data,
                                                                                      settings):  # noqa: ANN001
    settings.SESSION_RETENTION_DAYS = 365
    BillingConnection.objects.create(app=demo_app, provider="stripe", dry_run=True)
    olds = [aged(services.session_start(app=demo_app, data=snippet_data(email=f"c{i}@example.com")), 500)
            for i in range(5)]
    services.decision_record(session=olds[2], kind="cancel")  # its billing action is still pending
    assert BillingAction.objects.get(session=olds[2]).status == BillingAction.Status.PENDING

    assert privacy.sessions_scrub_expired(batch=2) == 4
    emails = dict(CancelSession.objects.values_list("pk", "email"))
    assert emails[olds[2].pk] == "c2@example.com"
    assert [emails[s.pk] for s in olds if s.pk != olds[2].pk] == ["", "", "", ""]

    BillingAction.objects.filter(session=olds[2]).update(status=BillingAction.Status.SKIPPED)
    assert privacy.sessions_scrub_expired(batch=2) == 1


def test_the_scrub_runs_nightly_from_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["privacy-retention"]
    assert entry["task"] == "privacy.sessions_scrub_expired"
    from celery.schedules import crontab

    assert isinstance(entry["schedule"], crontab)
    from brightback_site.celery import app

    app.loader.import_default_modules()
    assert "privacy.sessions_scrub_expired" in app.tasks


@pytest.mark.parametrize("value, message", [
    ("7", "SESSION_RETENTION_DAYS must be 0 (keep personal data) or at least 39"),
    ("-1", "SESSION_RETENTION_DAYS must be at least 0"),
    ("a year", "SESSION_RETENTION_DAYS must be a whole number"),
])
def test_a_retention_period_too_short_or_malformed_stops_the_start(value: str, message: str):
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "SESSION_RETENTION_DAYS": value,
           "BRIGHTBACK_VAR_DIR": str(django_settings.VAR_DIR)}
    started = subprocess.run([sys.executable, "-c", "import django; from django.conf import settings; "
                              "import os; os.environ['DJANGO_SETTINGS_MODULE']='brightback_site.settings'; "
                              "settings.SESSION_RETENTION_DAYS"],
                             env=env, capture_output=True, text=True, cwd=django_settings.BASE_DIR, timeout=60)
    assert started.returncode != 0
    assert message in started.stderr
