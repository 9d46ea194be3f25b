"""The rollups follow the data: beat rewrites the days that can still change."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from flows.models import Event
from reports import services
from reports.models import DailyStat
from reports.tasks import refresh

pytestmark = pytest.mark.django_db


def test_the_days_that_can_change_are_those_of_open_sessions_and_those_being_confirmed(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    settings.SESSION_TTL_SECONDS = 24 * 3600
    today = date(2026, 6, 30)
    assert services.days_that_can_change(today=today) == [
        (date(2026, 5, 23), date(2026, 6, 1)), (date(2026, 6, 29), date(2026, 6, 30))]
    settings.SESSION_TTL_SECONDS = 3 * 24 * 3600 + 1  # pages open for three days and a second
    assert services.days_that_can_change(today=today)[-1] == (date(2026, 6, 26), date(2026, 6, 30))


def test_a_save_confirmed_a_month_later_reaches_the_day_it_started(make_session) -> None:  # noqa: ANN001
    started = timezone.now() - timedelta(days=31)
    session = make_session(at=started, value=40, decision="nevermind")
    assert refresh() > 0
    stat = DailyStat.objects.get(day=started.date())
    assert (stat.sessions, stat.nevermind, stat.confirmed, stat.revenue_saved) == (1, 1, 0, Decimal("40.00"))
    Event.objects.create(app=session.app, session=session, type=Event.Type.SAVE_CONFIRMED, data={})
    refresh()
    assert DailyStat.objects.get(day=started.date()).confirmed == 1


def test_refreshing_twice_changes_nothing(make_session) -> None:  # noqa: ANN001
    make_session(value=10, decision="accept", offer="discount-30", reason="too-expensive")
    services.rollups_refresh_recent()
    first = list(DailyStat.objects.values("day", "sessions", "accepted", "revenue_saved"))
    services.rollups_refresh_recent()
    assert list(DailyStat.objects.values("day", "sessions", "accepted", "revenue_saved")) == first
    assert first[0]["revenue_saved"] == Decimal("7.00")


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_count_each_session_once(make_session) -> None:  # noqa: ANN001
    import threading

    from django.db import connection

    from conftest import need

    # SQLite's in-memory test database refuses a second writer ("table is locked") rather than waiting.
    need(connection.vendor == "postgresql", "two writers at once need PostgreSQL")
    for _ in range(30):
        make_session(value=10, decision="nevermind")
    errors: list[Exception] = []

    def run() -> None:
        try:
            services.rollups_refresh_recent()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(DailyStat.objects.values_list("sessions", flat=True)) == 30


def test_sessions_never_opened_and_test_mode_sessions_are_in_no_count_unless_asked_for(admin_client,  # noqa: ANN001
                                                                                       make_session) -> None:
    from reports.selectors import ReportFilter, overview

    make_session(decision="nevermind")
    for _ in range(3):  # three loads of the account page without a click: three sessions, never opened
        make_session(opened=False)
    make_session(decision="cancel", is_test=True)
    services.rollups_refresh_recent()
    today = timezone.localdate()
    live = overview(ReportFilter(first_day=today, last_day=today))
    assert (live.sessions, live.decided, live.sessions - live.decided) == (1, 1, 0)
    with_test = overview(ReportFilter(first_day=today, last_day=today, include_test=True))
    assert (with_test.sessions, with_test.canceled) == (2, 1)
    page = admin_client.get("/admin/reports/")
    assert 'data-figure="sessions">1<' in page.content.decode()
    page = admin_client.get("/admin/reports/", {"include_test": "on"})
    assert 'data-figure="sessions">2<' in page.content.decode()
